"""The half of harness that reads figures: asv result files into one tidy DataFrame,
comparisons and regressions with asv's own statistics, the pull-request gate, summaries,
plots, reports and the published site. It needs pandas (the ``report`` extra) and never
imports the measuring half."""
