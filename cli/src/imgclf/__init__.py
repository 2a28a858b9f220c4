"""imgclf: classify, sort and evaluate whole folders of images against the classifier's HTTP API."""
