"""Re-running a job's failed items: the plan, where it is kept between runs,
how an uncertain create is settled, and the run itself."""
