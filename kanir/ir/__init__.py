"""The KAN IR: KanGraph and its activations, validation, width specs, the function library,
B-spline math and the .kanir file format."""
