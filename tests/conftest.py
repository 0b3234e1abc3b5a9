from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.kubefake.pytest_plugin"]

REPO = Path(__file__).resolve().parent.parent
CLUSTERS = REPO / "tests" / "fixtures" / "clusters"


# `-m "not slow"` leaves these out for a quick loop (about a minute instead of ten); CI runs
# everything. Slow: the generated corpora (thousands of cases each), and the tests that start a
# real component or wait on a deadline, a second or more each (measured with --durations=0).
SLOW_MODULES = {f"tests.robustness.{name}" for name in (
    "test_corpus", "test_api_faults", "test_secrets", "test_config_types")}
SLOW_TESTS = {
    "test_a_certificate_five_days_from_expiry_alerts",
    "test_a_hanging_api_server_cannot_hold_the_run",
    "test_a_hanging_write_is_bounded_by_the_run_timeout",
    "test_a_refused_connection_is_reported_as_refused_without_url_credentials",
    "test_a_rollout_that_cannot_be_followed_is_rolled_back_now",
    "test_a_run_that_died_after_its_rollback_patch_finishes_the_rollback",
    "test_a_server_that_hangs_on_every_post_costs_one_timeout_not_one_per_request",
    "test_a_wrong_context_or_kubeconfig_path_is_one_usage_error",
    "test_alerts_hold_through_an_api_outage_and_the_blind_alert_fires",
    "test_any_text_is_a_field_selector_or_a_selector_error",
    "test_api_faults_become_unknown_with_the_cause",
    "test_applied_fixes_need_every_granted_write_and_no_other",
    "test_authorize_probe_reads_the_oauth_servers_answer", "test_basic_auth_with_htpasswd",
    "test_case_live", "test_check_cases_get_the_verdicts_of_a_full_parse",
    "test_endpoint_that_never_answers_times_out", "test_field_selectors_agree_with_apimachinery",
    "test_fifty_concurrent_scrapes_during_refreshes_see_whole_reports",
    "test_http_probe_gives_up_on_a_silent_server",
    "test_killed_after_any_write_of_a_failing_fix_the_next_run_ends_rolled_back",
    "test_killed_after_any_write_the_claim_swap_is_old_or_new_and_converges",
    "test_killed_after_any_write_the_qos_fix_is_old_or_new_and_converges",
    "test_kubectl_retries_after_429", "test_label_selectors_agree_with_apimachinery",
    "test_no_secret_in_any_output_of_a_case",
    "test_prometheus_gets_the_series_and_fires_the_check_alert",
    "test_push_works_then_the_bucket_goes", "test_python_client_default_configuration",
    "test_python_client_default_retries_hide_429", "test_python_client_hang_times_out",
    "test_redirect_matching_is_total_and_consistent",
    "test_refuses_to_start_exactly_when_the_registry_does",
    "test_rollback_clear_from_the_command_line", "test_rollback_command",
    "test_s3_failure_names_the_signature_in_the_pod_log",
    "test_s3_storage_ok_then_crit_when_the_bucket_is_gone",
    "test_secret_values_never_appear_whatever_the_input",
    "test_serve_holds_its_report_while_blind_and_stops_on_sigterm",
    "test_serve_judges_the_registry_on_each_server", "test_serve_listens_on_ipv6_loopback",
    "test_serve_puts_no_secret_in_metrics_or_logs", "test_serve_usage_errors_name_the_flag",
    "test_sigterm_lets_a_run_in_progress_finish",
    "test_split_store_behind_round_robin_is_crit_every_time",
    "test_the_canary_ends_within_its_probe_timeout",
    "test_throttling_is_retried_after_the_servers_delay",
    "test_unreachable_and_hung_registries_are_crit", "test_usage_errors_exit_64",
    "test_usage_errors_exit_64_with_one_line", "test_verdict_agrees_with_cockpit",
    "test_workload_selectors_select_what_the_api_server_selects", "test_wrong_keys",
    "test_wrong_types_get_a_verdict",
}


def pytest_configure(config: pytest.Config) -> None:
    """The folders are imported as registry_doctor.* only through an install (pyproject's
    package-dir), and PYTHONPATH cannot point that name at a checkout: refuse to test the code
    of another one, e.g. a virtualenv whose editable install is a different worktree."""
    import registry_doctor.doctor

    imported = Path(registry_doctor.doctor.__file__).resolve().parent.parent
    if imported != REPO:
        pytest.exit(f"registry_doctor is imported from {imported}, not from {REPO}: run "
                    f"`pip install -e '.[test]'` in {REPO} (scripts/test.sh does)", returncode=4)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if getattr(module, "__name__", "") in SLOW_MODULES \
                or getattr(item, "originalname", item.name) in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def clusters() -> Path:
    return CLUSTERS
