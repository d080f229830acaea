"""rmorch's driver: spec, plan, scheduler, result store, reports and the CLI."""
