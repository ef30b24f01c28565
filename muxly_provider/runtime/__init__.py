"""Running a job: load its validated configuration, fetch, route and deliver."""
