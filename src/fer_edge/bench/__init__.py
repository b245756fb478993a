"""`fer-edge bench`: latency, throughput and accuracy of artifacts across backends, with the machine recorded."""
