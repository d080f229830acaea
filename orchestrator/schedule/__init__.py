"""Stage 3, the schedule: replicas placed on the cluster's GPUs and fed units (`scheduler`), the packing policy
(`placement`) over a view of the nodes (`nodes`), and the sweep-wide error cap (`error_cap`)."""
