"""The ``airflow muxly`` command group, returned to Airflow through provider info ``cli``.

Airflow calls :func:`get_muxly_cli_commands` at every ``airflow`` command start, so this module only declares
commands; their code is imported lazily when one runs.
"""

from __future__ import annotations

from typing import Any


def get_muxly_cli_commands() -> list[Any]:
    """Return the ``muxly`` group command for Airflow's CLI parser."""
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand, lazy_load_command

    def _arg(flags: tuple[str, ...], **kwargs: Any) -> Any:
        return Arg(flags, **kwargs)  # type: ignore[no-untyped-call]  # Airflow's Arg is untyped

    def cmd(module: str, func: str) -> Any:
        return lazy_load_command(f"muxly_provider.cli.{module}.{func}")

    arg_to_revision = _arg(("--to-revision",), help="Alembic revision to migrate to (default: head)")
    arg_to_revision_required = _arg(
        ("--to-revision",),
        help="Alembic revision to downgrade to ('base' removes every table)",
        required=True,
    )
    arg_yes = _arg(("-y", "--yes"), help="Do not ask for confirmation", action="store_true")
    arg_sql = _arg(("-s", "--show-sql-only"), help="Print the SQL instead of running it", action="store_true")
    arg_output = _arg(("-o", "--output"), help="File to write (default: standard output)")
    arg_include_secrets = _arg(
        ("--include-secrets",), help="Write secrets in clear text instead of '***'", action="store_true"
    )
    arg_file = _arg(("file",), help="YAML file written by 'airflow muxly config export' or by hand")
    arg_dry_run = _arg(
        ("--dry-run",), help="Validate and show what would change, write nothing", action="store_true"
    )
    arg_output_format = _arg(
        ("--output-format",), help="Output format", choices=("table", "json"), default="table"
    )

    db_commands = (
        ActionCommand(
            name="migrate",
            help="Create or upgrade Muxly's tables in [muxly] sql_alchemy_conn",
            func=cmd("db_command", "migrate"),
            args=(arg_to_revision, arg_sql),
        ),
        ActionCommand(
            name="downgrade",
            help="Downgrade Muxly's tables to a revision",
            func=cmd("db_command", "downgrade"),
            args=(arg_to_revision_required, arg_sql, arg_yes),
        ),
        ActionCommand(
            name="check",
            help="Exit 0 when Muxly's tables are at the newest revision, else 1",
            func=cmd("db_command", "check"),
            args=(),
        ),
    )
    config_commands = (
        ActionCommand(
            name="export",
            help="Write every configuration table as YAML (secrets redacted)",
            func=cmd("config_command", "export_config"),
            args=(arg_output, arg_include_secrets),
        ),
        ActionCommand(
            name="import",
            help="Validate a YAML file, then upsert its rows by id in one transaction",
            func=cmd("config_command", "import_config"),
            args=(arg_file, arg_dry_run),
        ),
    )
    arg_job_id = _arg(("job_id",), help="Id of a scheduler_jobs row")
    arg_conf = _arg(("--payload",), help="JSON put into the run's conf['payload']")
    arg_limit = _arg(("--limit",), help="How many executions to show", type=int, default=20)
    arg_history_job = _arg(("--job-id",), help="Only the executions of this job")
    arg_folder = _arg(("--folder",), help="The DAG folder to write the shard files into", required=True)
    arg_preview_limit = _arg(
        ("--limit",),
        help="Records to preview: read from the job's connector (default 10), or the first of --sample; "
        "at most 100",
        type=int,
    )
    arg_sample = _arg(
        ("--sample",),
        help="A JSON (a list of objects) or JSONL file of records to route instead of reading the connector",
    )
    jobs_commands = (
        ActionCommand(
            name="list",
            help="List the jobs and their DAG ids",
            func=cmd("jobs_command", "list_jobs"),
            args=(arg_output_format,),
        ),
        ActionCommand(
            name="validate",
            help="List every job row that cannot become a DAG, with the reason",
            func=cmd("jobs_command", "validate_jobs"),
            args=(arg_output_format,),
        ),
        ActionCommand(
            name="run",
            help="Trigger a run of a job now (its DAG must be parsed and unpaused)",
            func=cmd("jobs_command", "run_job"),
            args=(arg_job_id, arg_conf, arg_output_format),
        ),
        ActionCommand(
            name="history",
            help="Show recent job executions",
            func=cmd("jobs_command", "job_history"),
            args=(arg_history_job, arg_limit, arg_output_format),
        ),
        ActionCommand(
            name="preview",
            help="Show what a run of a job would deliver per destination, writing nothing",
            func=cmd("jobs_command", "preview_job"),
            args=(arg_job_id, arg_preview_limit, arg_sample, arg_output_format),
        ),
        ActionCommand(
            name="write-shards",
            help="Write one DAG file per shard of [muxly] dag_file_shards into a DAG folder",
            func=cmd("jobs_command", "write_shards"),
            args=(arg_folder,),
        ),
    )
    arg_expression = _arg(
        ("expression",), help="A condition expression, e.g. \"revenue > 1000 AND country == 'US'\""
    )
    arg_rule_id = _arg(("rule_id",), help="Id of a routing_rules row")
    arg_connector_id = _arg(("connector_id",), help="Id of a connectors row")
    arg_data = _arg(("--data",), help="A JSON record (or a JSON list of records) to test with", required=True)
    routing_commands = (
        ActionCommand(
            name="test",
            help="Evaluate a condition against a JSON record; show the match or the error with a caret",
            func=cmd("routing_command", "test_condition"),
            args=(arg_expression, arg_data),
        ),
    )
    rules_commands = (
        ActionCommand(
            name="test",
            help="Run a stored rule (condition and transformations) against JSON records",
            func=cmd("routing_command", "test_rule"),
            args=(arg_rule_id, arg_data),
        ),
    )
    connectors_commands = (
        ActionCommand(
            name="test",
            help="Check a connector's reachability and credentials and say what is wrong",
            func=cmd("connectors_command", "test_connector"),
            args=(arg_connector_id,),
        ),
    )
    arg_letter_id = _arg(("letter_id",), help="Id of a dead_letters row")
    arg_letter_ids = _arg(("letter_ids",), help="Ids of dead_letters rows (or use the filters)", nargs="*")
    arg_dl_job = _arg(("--job-id",), help="Only letters of this job")
    arg_dl_dag = _arg(("--dag-id",), help="Only letters of this DAG")
    arg_dl_run = _arg(("--run-id",), help="Only letters of this DAG run")
    arg_dl_destination = _arg(("--destination-id",), help="Only letters of this destination")
    arg_dl_replayed = _arg(
        ("--replayed",), help="true: replayed letters only; false: not replayed", choices=("true", "false")
    )
    arg_dl_limit = _arg(("--limit",), help="How many letters at most", type=int, default=100)
    arg_dl_to = _arg(("--to",), help="Replay to this destination instead of the letter's own")
    dl_filters = (arg_dl_job, arg_dl_dag, arg_dl_run, arg_dl_destination)
    dead_letter_commands = (
        ActionCommand(
            name="list",
            help="List stored dead letters (newest first) with their error and replay state",
            func=cmd("dead_letters_command", "list_dead_letters"),
            args=(*dl_filters, arg_dl_replayed, arg_dl_limit, arg_output_format),
        ),
        ActionCommand(
            name="show",
            help="Show one dead letter with its records",
            func=cmd("dead_letters_command", "show_dead_letter"),
            args=(arg_letter_id, arg_output_format),
        ),
        ActionCommand(
            name="replay",
            help="Deliver dead letters again (by id, or the un-replayed ones matching filters); idempotent",
            func=cmd("dead_letters_command", "replay_dead_letters"),
            args=(arg_letter_ids, *dl_filters, arg_dl_to, arg_dl_limit, arg_output_format),
        ),
    )
    arg_username = _arg(("--username",), help="The user's login name", required=True)
    arg_email = _arg(("--email",), help="The user's email address", required=True)
    arg_display_name = _arg(("--display-name",), help="The user's display name")
    arg_role = _arg(
        ("--role",), help="A role of the user (repeatable: admin, operator, viewer)", action="append"
    )
    arg_password = _arg(("--password",), help="The password (default: asked for; prefer --password-stdin)")
    arg_password_stdin = _arg(
        ("--password-stdin",),
        help="Read the password from the first line of standard input",
        action="store_true",
    )
    arg_user = _arg(("username",), help="The user's login name or id")
    users_commands = (
        ActionCommand(
            name="create",
            help="Create a local user (e.g. the first admin: --role admin)",
            func=cmd("users_command", "create_user"),
            args=(arg_username, arg_email, arg_display_name, arg_role, arg_password, arg_password_stdin),
        ),
        ActionCommand(
            name="list",
            help="List the users and their roles",
            func=cmd("users_command", "list_users"),
            args=(arg_output_format,),
        ),
        ActionCommand(
            name="set-password",
            help="Set a local user's password (ends their sessions)",
            func=cmd("users_command", "set_password"),
            args=(arg_user, arg_password, arg_password_stdin),
        ),
    )
    arg_since = _arg(
        ("--since",), help="Only runs that started at or after this ISO date-time (default: the last 7 days)"
    )
    arg_reconcile_dry_run = _arg(
        ("--dry-run",), help="Show which execution rows would change, write nothing", action="store_true"
    )
    executions_commands = (
        ActionCommand(
            name="reconcile",
            help="Fill in job_executions from Airflow's run history (runs missed while Muxly's DB was down)",
            func=cmd("executions_command", "reconcile_executions"),
            args=(arg_history_job, arg_since, arg_reconcile_dry_run, arg_output_format),
        ),
    )
    return [
        GroupCommand(
            name="muxly",
            help="Manage Muxly: its database, its configuration and its jobs",
            subcommands=(
                GroupCommand(name="db", help="Muxly's database", subcommands=db_commands),
                GroupCommand(name="config", help="Configuration as code (YAML)", subcommands=config_commands),
                GroupCommand(name="jobs", help="Jobs and their DAGs", subcommands=jobs_commands),
                GroupCommand(name="conditions", help="The condition language", subcommands=routing_commands),
                GroupCommand(name="rules", help="Routing rules", subcommands=rules_commands),
                GroupCommand(name="connectors", help="Connectors", subcommands=connectors_commands),
                GroupCommand(
                    name="dead-letters",
                    help="Records destinations refused: list, show, replay",
                    subcommands=dead_letter_commands,
                ),
                GroupCommand(name="users", help="Users of Muxly's API", subcommands=users_commands),
                GroupCommand(
                    name="executions", help="Job executions (job_executions)", subcommands=executions_commands
                ),
                ActionCommand(
                    name="doctor",
                    help="Check this machine's readiness (database, Fernet key, staging, settings) and say what to fix",
                    func=cmd("doctor_command", "doctor"),
                    args=(arg_output_format,),
                ),
            ),
        )
    ]
