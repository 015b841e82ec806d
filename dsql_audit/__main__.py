from dsql_audit.cli import main

main()
