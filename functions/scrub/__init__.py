"""The scrub function (scaffolded by `dynafed-fn new-function`)."""
