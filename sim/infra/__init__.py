"""Infrastructure the executors run on: hosts (CPU), and later brokers, result backends, clusters."""
