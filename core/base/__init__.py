"""The base layer: errors, atomic files, paths, the device, CPU threads, processes, the run-file reader."""
