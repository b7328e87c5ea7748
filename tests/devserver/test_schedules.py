import fcntl
from pathlib import Path

import pytest

from devserver.lambda_host import LambdaHost
from devserver.schedules import ScheduleBusy, ScheduleRunner, timer_rates
from devserver.template import TemplateError, load_template


def test_timer_rates_with_overrides(synthetic_template: Path) -> None:
    template = load_template(synthetic_template)

    rates = {schedule.name: rate for schedule, rate in timer_rates(template, {"Tick": 0.5})}

    # Nightly is cron (on demand only); Paused is disabled.
    assert rates == {"Tick": 0.5}
    assert {schedule.name: rate for schedule, rate in timer_rates(template, {})} == {"Tick": 7200}
    with pytest.raises(TemplateError, match="Tock"):
        timer_rates(template, {"Tock": 1})


def test_a_run_in_progress_elsewhere_is_not_doubled(synthetic_template: Path, tmp_path: Path) -> None:
    template = load_template(synthetic_template)
    runner = ScheduleRunner(template, LambdaHost("http://127.0.0.1:1"), tmp_path)
    tick = template.schedule("Tick")

    with (tmp_path / f"{tick.qualified_name}.lock").open("w") as other_process_lock:
        fcntl.flock(other_process_lock, fcntl.LOCK_EX)
        with pytest.raises(ScheduleBusy):
            runner.run(tick, wait=False)
        fcntl.flock(other_process_lock, fcntl.LOCK_UN)

    assert runner.run(tick, wait=False)["scheduled"] == {"task": "tick"}
