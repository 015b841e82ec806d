from dsql_audit.cli import main

main(prog_name="dsql-audit")  # usage lines and shell completion name the command users type
