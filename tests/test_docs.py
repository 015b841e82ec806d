from dsql_audit.docs import main


def test_generated_rule_docs_are_current():
    assert main(["--check"]) == 0, "run: python -m dsql_audit.docs"
