"""The generated blocks of docs/BENCHMARKS.md, rendered from each benchmark's JSON.

The document is written by hand; only the text between a block's markers is the benchmark's:

    <!-- generated from docs/benchmarks/cost.json, block calls: do not edit -->
    ...
    <!-- end of generated block -->

Each marker stands on a line of its own between paragraphs (a comment starting a line inside a paragraph would end
the paragraph there). Re-rendering replaces each block and leaves every other byte of the document as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from benchmarks.report import machine_line, table

# A table's column: its header, and its cell in each row (a key of the row's item, or a function of the item).
Column = tuple[str, str | Callable[[Any], Any]]
# A benchmark's blocks: each block's name in its markers, and its text.
Blocks = dict[str, str]


def lobby(result: dict[str, Any]) -> Blocks:
    model, sale = result["model"], result["with_lobby"]
    without, joined = result["joins_without_lobby"], result["joins_with_lobby"]
    polls = sale["polls_per_lobby_waiter"]
    rows = [
        [key.replace("_", " "), f"{without[key]:,}", f"{joined[key]:,}"]
        for key in ("peak_joins_per_second", "joins_in_the_opening_second")
    ]
    model_block = f"""{machine_line(result)}

benchmarks/lobby.py: {model["buyers"]:,} buyers, capacity {model["capacity"]:,}, admission every
{model["admission_seconds"]} s, `PreQueueMinutes` {model["lobby_minutes"]}. {model["opening_share"]:.0%} mean to be
there at the opening: without a lobby (a first-come line) they arrive in its first seconds (exponential, mean
{model["rush_mean_seconds"]:g} s); with it, during the lobby's window, more of them towards the opening (exponential
back from it, mean {model["lobby_mean_seconds"]:g} s). The rest arrive after the opening (mean
{model["late_mean_seconds"]:g} s later), and a bot joins at the opening's first millisecond. The real `QueueService`
and scheduler on the in-memory repository; every waiter follows `retryAfterSeconds`; an admitted buyer holds its
slot for a lognormal shopping time (median {model["shopping_median_seconds"]:g} s), then pays.

{table(["joins", "without the lobby", "with the lobby"], rows)}"""
    sale_block = f"""With the lobby: **{sale["lobby_size"]:,}** waited in it; the line formed (first admission)
**{sale["line_formed_after_seconds"]} s** after the opening (the first Admit run at least 30 s after it: 30 s
to 30 s + the admission interval, by the runs' phase). Spearman's rank
correlation between arrival time and admission order: **{sale["lobby_rank_correlation_arrival_vs_admission"]}**
within the lobby (random: about ±{1 / max(1, sale["lobby_size"] - 1) ** 0.5:.3f} by chance), and
**{sale["after_opening_rank_correlation_arrival_vs_admission"]}** among the {sale["arrived_after_opening"]:,} who
arrived after the opening (first come, first served). Arrivals after the opening admitted before a lobby member:
**{sale["arrivals_after_opening_admitted_before_a_lobby_member"]}**; the bot entered **#{sale["bot_admission_rank"]}**
(0-based: right behind the whole lobby). Polls per lobby waiter: median {polls["median"]}, p99 {polls["p99"]}
(the join's poll, the return at its run, the polls of the line after); peak polls per second before the opening
{sale["peak_polls_per_second_before_opening"]:,}, from the opening {sale["peak_polls_per_second_from_opening"]:,}
(the lobby's returns are spread by place, the front first; times 10 at 1,000,000 buyers). Per join: two DynamoDB
requests, as any join; per admission run: about `free` lobby keys read, nothing per waiter \
(docs/QUEUE.md, "The lobby")."""
    return {"model": model_block, "sale": sale_block}


def columns_table(columns: Sequence[Column], items: Iterable[Any]) -> str:
    """A table of one row per item, each column's cell taken from the item."""
    return table(
        [header for header, _ in columns],
        [[item[cell] if isinstance(cell, str) else cell(item) for _, cell in columns] for item in items],
    )


def _pass(met: bool) -> str:
    return "PASS" if met else "**FAIL**"


def _percent(value: float | None, decimals: int = 0) -> str:
    return "-" if value is None else f"{value * 100:.{decimals}f} %"


def _pairs(counts: dict[str, Any], separator: str = ": ") -> str:
    """`name: count, ...` (or with another separator between name and count)."""
    return ", ".join(f"{name}{separator}{count}" for name, count in counts.items())


def cost(result: dict[str, Any]) -> Blocks:
    rows = [
        (
            e["label"],
            e["calls"],
            e["statuses"],
            e["requests_min"] if e["requests_min"] == e["requests_max"] else f"{e['requests_min']}-{e['requests_max']}",
            e["write_requests_mean"],
            e["wru_mean"],
            e["rru_mean"],
            e["operations"],
        )
        for e in result["endpoints"]
    ]
    targets = [(t["target"], t["calls_checked"], _pass(t["met"]), "; ".join(t["problems"])) for t in result["targets"]]
    overhead = [
        (
            label,
            o["handler_ms_mean"],
            o["dynamodb_ms_mean"],
            o["our_code_ms_mean"],
            _percent(o["our_code_over_dynamodb"]),
        )
        for label, o in result["handler_overhead"].items()
    ]
    calls = f"""{machine_line(result)} Engine: {result["engine"]}; {result["buyers"]} buyers through the whole journey
(capacity half of them, so the other half WAIT), each call recorded. WRU/RRU are per call (mean), billed by
AWS's rules (method notes below). ` FAILED:` marks a request that failed (billed all the same).

{table(["call", "calls", "status", "requests", "write requests", "WRU", "RRU", "operations (most common)"], rows)}"""
    return {
        "calls": calls,
        "targets": table(["target", "calls checked", "result", "what broke it"], targets),
        "overhead": table(
            ["call", "handler ms", "in DynamoDB calls ms", "our code ms", "our code / DynamoDB"], overhead
        ),
    }


def scheduler(result: dict[str, Any]) -> Blocks:
    runs = [
        (r["scenario"], r["task"], r["requests"], r["read_requests"], r["rru"], r["wru"], _pairs(r["summary"], " "))
        for r in [result["first_recount"], *result["runs"]]
    ]
    targets = [(t["target"], t["value"], _pass(t["met"])) for t in result["targets"]]
    former = result["former_registry_read"]
    runs_block = f"""\
{machine_line(result)} Engine: {result["engine"]}. {result["live"]} concerts on sale (created through the API,
3 waiters each), each scheduler task run once; then {result["past"]:,} concerts whose last date passed a day to a
year ago are written directly ({result["past_write_requests"]:,} BatchWriteItem requests) and each task run again.
Runs read the discovery listing (GSI2 `CONCERTS`, by the last date's start) from the present on (Expire: from
ActiveTokenTtlSeconds + 1 hour ago), so what they read follows the concerts on sale (docs/QUEUE.md).

{table(["concerts", "task", "requests", "read requests", "RRU", "WRU", "summary"], runs)}

The former loop began every run by reading the whole registry (PK=QUEUES): here {former["requests"]} request(s) and
{former["rru"]} RRU for that read alone, then went through every concert ever created: `Admit` a consistent
GetItem of each ended concert's state (to learn it is off sale), `Expire` a Query of each one's ACTIVE tokens,
so over {result["past"]:,} past concerts each of those runs made {result["past"]:,} requests more than it does now.
The first Recount after a deploy reads the registry once to list concerts from before the listing; the pass
that finds none left marks the backfill done, and no later run reads the registry.

{table(["target", "figures", "result"], targets)}"""
    return {"runs": runs_block}


def stadium(result: dict[str, Any]) -> Blocks:
    create, publish, pages = result["create"], result["publish"], result["pages"]
    targets = [(t["target"], t["value"], _pass(t["met"])) for t in result["targets"]]
    steps = [
        (
            "POST /admin/concerts",
            f"{create['status']} in {create['seconds']} s, {create['requests']} DynamoDB requests, {create['wru']} "
            f"WRU; {create['ranges']} ranges queued, the largest message {publish['largest_message_bytes']} bytes",
        ),
        (
            "publication (local)",
            f"{publish['seconds']} s, {publish['seats_per_second']:,} seats/s, {publish['requests']:,} requests, "
            f"{publish['redelivered']} messages redelivered; then {publish['status']}",
        ),
        (
            "publication cost",
            f"{publish['wru']:,} WRU ({publish['wru_per_seat']} per seat: the seat, and per range its marker and "
            f"counter in a transaction), {publish['rru']:,} RRU",
        ),
        (
            "publication on AWS",
            f"~{publish['aws_seconds_one_partition']} s: one date's seats share a partition key, ~1,000 WRU/s per "
            "partition; dates in parallel (one FIFO group and one partition each)",
        ),
        (
            "seat list, paged",
            f"{pages['count']} pages, {pages['seats']:,} seats, largest page {pages['largest_bytes']:,} bytes (6 MB "
            f"limit), {pages['mean_seconds']} s a page, {pages['rru']} RRU in all, {pages['retried_503']} page(s) "
            "retried after a 503",
        ),
    ]
    steps_block = f"""\
{machine_line(result)} Engine: {result["engine"]}. One date of {result["seats"]:,} seats in two `seatBlocks`
(sections FLOOR and STAND): one POST, its ranges sent to the local SQS FIFO queue (moto's server) and handed to the
publisher function in batches of 10 by the local server's SQS event source (devserver/queues.py), then the date's
free seats listed 5,000 a page.

{table(["step", "figures"], steps)}

{table(["target", "figures", "result"], targets)}"""
    return {"steps": steps_block}


def sale(result: dict[str, Any]) -> Blocks:
    rows = [
        (e["endpoint"], e["requests"], e["per_second"], e["p50_ms"], e["p95_ms"], e["p99_ms"], _pairs(e["statuses"]))
        for e in result["endpoints"]
    ]
    audit = result["audit"]
    verdict = (
        "**no violation**"
        if audit["ok"]
        else f"**{len(audit['violations'])} violation(s)**: " + "; ".join(audit["violations"][:5])
    )
    figures = _pairs(dict(sorted(audit["figures"].items())), " ")
    every = result["all"]
    run = f"""{machine_line(result)}

{result["users"]} buyers joined within {result["join_seconds"]:g} s a concert of {result["seats"]} seats with
`queueCapacity` {result["capacity"]} and {result["queue_shards"]} counter shard(s), on the local server
({result["server_workers"]} worker processes, DynamoDB Local) driven by locust buyers
(`benchmarks/locustfile.py`), at most {result["client_threads"]} requests in flight. Waiters poll at the
server's `retryAfterSeconds`; the scheduler's `Admit` ran every
{result["admit_every_seconds"]:g} s ({result["admit_runs"]} runs, median {result["admit_run_ms_median"]} ms). Each
buyer then lists the dates and the free seats, holds a random free seat (up to 3 tries), charges the price
and pays.

**{result["requests"]} requests in {result["seconds"]} s: {result["requests_per_second"]} requests/s,
{result["tickets_per_second"]} tickets/s**; all endpoints p50 {every["p50_ms"]} ms, p95 {every["p95_ms"]} ms,
p99 {every["p99_ms"]} ms (client-side, including the wait for a free worker). Outcomes: {_pairs(result["outcomes"])};
{result["server_errors"]} answers ≥ 500; {result["polls_per_waiting_buyer"]} polls per buyer who waited.

{table(["endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "statuses"], rows)}

Audit of the table afterwards ({audit["seconds"]} s): {verdict}. Figures: {figures}."""
    return {"run": run}


def hotkeys(result: dict[str, Any]) -> Blocks:
    limits = result["limits"]
    phases = [
        {**run[phase], "shards": f"K={run['shards']}", "phase": title}
        for run in result["runs"]
        for phase, title in (("join_second", "joins (1 s)"), ("polling", "polling (steady)"))
        if run[phase]
    ]
    polling = next((run["polling"] for run in result["runs"] if run.get("polling")), None)
    poll_note = ""
    if polling:
        poll_note = (
            f"\n\n{polling['waiters']} token holders polling at the server's `retryAfterSeconds` (intervals seen, "
            f"seconds: count) {_pairs(polling['retry_after_seconds_seen'])} make "
            f"**{polling['requests_per_second']} requests/s** in all (expected from the intervals: "
            f"{polling['expected_polls_per_second']}/s; operations/s: "
            f"{_pairs(polling['operations_per_second'])}); the queue state item is read at most once per "
            "container and cache period (`QueueStateCacheSeconds`)."
        )
    first = result["runs"][0]
    run = f"""{machine_line(result)}

{first["joins"]} joins within one second, spread over {first["containers"]} simulated Lambda containers (each its
own `QueueService`, so its own queue-state cache), on moto in-process with a simulated clock; every request is
recorded with the items and GSI partitions it writes. Limits: {limits["writes_per_second"]} writes/s and
{limits["reads_per_second"]} reads/s on any one item or GSI partition (80 % of a partition's 1,000 WCU / 3,000 RCU).

{columns_table(_HOTKEY_COLUMNS, phases)}{poll_note}"""
    return {"run": run}


def _busiest(figures: dict[str, Any], access: str) -> str:
    """The busiest item and the busiest GSI partition written (or read)."""
    keys = figures[f"busiest_items_{access}"][:1] + figures[f"busiest_index_partitions_{access}"][:1]
    return "<br>".join(f"`{key['key']}` {key['per_second']}/s" for key in keys) or "-"


_HOTKEY_COLUMNS: list[Column] = [
    ("shards", "shards"),
    ("phase", "phase"),
    ("requests/s", "requests_per_second"),
    ("busiest written (item, GSI partition)", lambda figures: _busiest(figures, "written")),
    ("busiest read", lambda figures: _busiest(figures, "read")),
    ("max writes/s", "max_writes_per_second_one_key"),
    ("max reads/s", "max_reads_per_second_one_key"),
    ("result", lambda figures: _pass(figures["met"])),
]


_COLDSTART_COLUMNS: list[Column] = [
    ("function", "function"),
    ("import ms (median)", "median_ms"),
    ("p90 ms", "p90_ms"),
    ("min ms", "min_ms"),
    ("target", lambda h: _pass(h["met"])),
    ("first DynamoDB client ms", "client_median_ms"),
    ("import ms, tracing off", "tracing_off_median_ms"),
    ("biggest imports (ms)", lambda h: ", ".join(f"{b['package']} {b['self_ms']}" for b in h["biggest_imports"][:5])),
]


def coldstart(result: dict[str, Any]) -> Blocks:
    run = f"""{machine_line(result)}

The load average above is read when the runs end; it was {result.get("load_average_1min_at_start", "?")} when they began
(2 cores, other work running).
Each handler's `app.py` loaded in a fresh `python` ({result["runs"]} runs each, interleaved), the layer on
`sys.path` as under /opt/python, in Lambda's environment with `Tracing: Active` as template.yaml deploys it
(`LAMBDA_TASK_ROOT` set, so Powertools' Tracer is on and the X-Ray SDK loads as on Lambda); target median
< {result["target_ms"]:g} ms for that import. The same runs are repeated with `POWERTOOLS_TRACE_DISABLED=true`
(as `make run` and `sam local`). An empty interpreter starts in {result["interpreter_start_ms"]} ms (not included).
*first DynamoDB client* is what the first call that reaches DynamoDB adds after the import (boto3, botocore,
the X-Ray botocore patch, the client): that work was moved out of the import, not removed, so a cold call
that reads DynamoDB pays import + client. The biggest imports come from one `python -X importtime` run per
handler (tracing on): the time spent in each top-level package's own modules, in ms.

{columns_table(_COLDSTART_COLUMNS, result["handlers"])}"""
    return {"run": run}


_DOLLAR_COLUMNS: list[Column] = [
    ("call", "call"),
    ("calls per ticket", "per_ticket"),
    ("WRU", "wru"),
    ("RRU", "rru"),
    ("handler ms", "handler_ms"),
    ("MB", "memory_mb"),
    ("$ per 1M tickets", "dollars_per_million_tickets"),
]


def dollar_table(result: dict[str, Any]) -> str:
    """One row per call of the buyer's journey (the section's table, and what `make bench-dollars` prints)."""
    return columns_table(_DOLLAR_COLUMNS, result["calls"])


def dollars(result: dict[str, Any]) -> Blocks:
    prices = result["prices"]
    tickets, polls = result["per_million_tickets"], result["per_million_polls"]
    units = f"""\
{machine_line(result)} Units from the cost run of {result["cost_measured_at"]}; the buyer's calls per ticket
{result["journey_source"]}.

Prices ({prices["as_of"]}): Lambda arm64 ${prices["lambda_arm64_per_gb_second"]} per GB-s and
${prices["lambda_per_million_requests"]} per million requests; API Gateway REST
${prices["api_gateway_rest_per_million"]} per million; DynamoDB on-demand
${prices["dynamodb_per_million_wru"]} per million WRU and ${prices["dynamodb_per_million_rru"]} per million RRU.

{dollar_table(result)}

**Per million tickets sold: ${tickets["total"]}** (API Gateway ${tickets["api_gateway"]}, DynamoDB
${tickets["dynamodb"]} for {tickets["wru"]:,} WRU and {tickets["rru"]:,} RRU, Lambda ${tickets["lambda"]}).
**Per million queue polls: ${polls["total"]}** (API Gateway ${polls["api_gateway"]}, Lambda ${polls["lambda"]},
DynamoDB ${polls["dynamodb"]})."""
    return {"units": units}


def scale(result: dict[str, Any]) -> Blocks:
    up, quotas, prices = result["scale_up"], result["quotas"], result["prices"]
    model = result["cadences"][0]["model"]
    # Every rule's sale in every cadence, with the cadence's admission interval.
    rules = [{**r, "every": c["model"]["admission_seconds"]} for c in result["cadences"] for r in c["rules"]]
    new_rule = [r for r in rules if r["rule"] == "retryAfterSeconds"]
    sections = [
        f"**Admission every {c['model']['admission_seconds']} s.**\n\n"
        f"{columns_table(_rule_columns(up), c['rules'])}\n\n{_reading(c)}"
        for c in result["cadences"]
    ]
    route_rows = [
        (route, r["every"], *(format(figures[key] * up, spec) for key, spec in _ROUTE_FIGURES))
        for r in new_rule
        for route, figures in r["routes"].items()
    ]
    item_rows = [
        (
            r["rule"],
            r["every"],
            *(r["dollars"]["per_million_tickets_items"][item] for item in _LINE_ITEMS),
            r["dollars"]["per_million_tickets"],
            f"{r['dollars']['sale'] * up:,.2f}",
            f"{r['dollars']['sale_with_waf'] * up:,.2f}",
        )
        for r in rules
    ]
    checks = [(c["admission_seconds"], c["target"], c["value"], _pass(c["met"])) for c in result["targets"]]
    outcomes = "; ".join(
        f"every {r['every']} s: " + ", ".join(f"{name} {count:,}" for name, count in r["outcomes"].items())
        for r in new_rule
    )
    cpu = sum(r["cpu_seconds"] for r in rules)
    sale = f"""{machine_line(result)} CPU: {cpu:.0f} s for all the sales below.

A sale of {model["buyers"]:,} buyers for {model["seats"]:,} seats (one ticket each), `queueCapacity`
{model["capacity"]:,}, ACTIVE time {model["active_seconds"]} s, Expire every {model["expiry_seconds"]} s,
Admit every 60 s and every 300 s (each run starts up to {model["run_delay_seconds"]:g} s late: EventBridge is
not second-aligned), run in simulated time with the real `QueueService` (joins, polls, Expire and Admit) on
an in-memory repository (`benchmarks/queue_fake.py`, the DynamoDB repository's interface and conditions in
dicts: moto would take hours for this many requests). {model["opening_share"]:.0%} of the buyers join
within {model["opening_seconds"]:g} s of the opening, the rest later (exponential, mean
{model["late_mean_seconds"] / 60:g} min); a waiter gives up after a lognormal time (median
{model["patience_median_seconds"] / 60:g} min); an admitted buyer shops for a lognormal time (median
{model["shopping_median_seconds"]:g} s), {model["buying_share"]:.0%} pay, the others abandon (their token
lapses at its time). Once the last seat is sold, a waiter's next poll and any join answer 410 `SOLD_OUT`
(the contract's sold-out answer, built on another branch; without it waiters would poll on) and it stops.
Every sale is run under each polling rule with the same buyers: `fixed 20 s` (a hosted waiting room's
refresh), `2 s + 1 s / 50 places` (the rule before issue 14, at most 30 s), `retryAfterSeconds` (the server's
answer, docs/QUEUE.md "Polling") and `every 2 s` (the reference for
the time to sell out). The figures marked 1M, for {model["buyers"] * up:,} buyers, are the same sale with
buyers, capacity and seats times {up}: every position and every run's advance scale together, so waits and
polls per waiter are the run's and request rates {up} times its (for `2 s + 1 s / 50 places` an upper
bound: its 30 s cap comes sooner). A fixed-interval client gets the same answer at every poll between
two runs: those polls are counted at their times and the service is called at the first poll after a run
(for `fixed 20 s` and `every 2 s`, after the run that passes the waiter); `retryAfterSeconds` clients call
it at every poll.
Outcomes under `retryAfterSeconds`: {outcomes}.

Columns: polls per waiter (every buyer who got WAIT) and per waiter admitted, median / p99; polls per
ticket sold; polls/s at {model["buyers"] * up:,} buyers, the busiest second (the opening's, when every joiner
asks its place), the busiest once the opening's joins are over, and the mean over the sale; every route's
busiest second against API Gateway's {quotas["api_gateway_rps"]:,} requests/s account quota; Lambda
concurrency at the busiest second of each route (requests/s x the handler's time, summed) against the
{quotas["lambda_concurrency"]:,} default; the median over admitted waiters of |first estimate - actual wait| /
actual wait (the first estimate given: the line's pace is unknown until the runs cover an ACTIVE window, so the
opening's waiters get theirs at a later poll); the share of the ACTIVE time lost between admission and the
waiter's return, p99 / max; the time from the opening to the last seat sold; dollars of the polls and of
every request per million tickets, and of the whole sale of {model["buyers"] * up:,} buyers.

{(chr(10) * 2).join(sections)}

Requests per route under `retryAfterSeconds`, {model["buyers"] * up:,} buyers (x{up}):

{table(["route", "admission every s", "requests", "busiest second /s", "mean /s", "Lambda concurrency"], route_rows)}

At the opening every joiner asks its place at once (the join answers no retry time: the contract gives the
join no `retryAfterSeconds`), so the busiest second is the opening's: its joins plus their first polls, over
API Gateway's quota at {model["buyers"] * up:,} buyers whatever the polling rule (the hot-keys benchmark and the
lobby of issue 14 are about that burst; a quota raise or a WAF rate rule is the operator's part). After it,
`retryAfterSeconds` keeps polls under the figure in the targets below. A waiter far back learns that the sale
is over at its next poll, which can be hours away (the plot's tail after the last seat): its retry time is a
share of the wait it was estimated, not of the sale.

Dollars per million tickets by AWS line item, and the whole sale of {model["buyers"] * up:,} buyers
(us-east-1 list prices: API
Gateway REST ${prices["api_gateway_rest_per_million"]} per million; Lambda arm64 ${prices["lambda_arm64_per_gb_second"]}
per GB-s and ${prices["lambda_per_million_requests"]} per million requests, each call at its cost-run handler time
and template memory; DynamoDB on-demand ${prices["dynamodb_per_million_wru"]} / ${prices["dynamodb_per_million_rru"]}
per million WRU / RRU at each call's measured units (benchmarks/dollars.py's rules); CloudWatch Logs
${prices["cloudwatch_logs_per_gb"]} per GB ingested at {prices["log_bytes_per_invocation"]:,} bytes per invocation;
X-Ray ${prices["xray_per_million_traces"]} per million traces recorded under the default sampling rule, 1 request/s
then {prices["xray_rate"]:.0%}; WAF ${prices["waf_per_million_requests"]} per million requests when a web ACL is
attached (none in template.yaml), plus its monthly fees). The scheduler's invocations (at the cost run's
handler times) and writes (4 WRU per admission, 3 per expiry) and the seat stream's batches (one per 10 holds,
assumed) are in Lambda and DynamoDB. Cognito bills per monthly active user, not per request: apart.

{table(["rule", "admission every s", *_LINE_ITEMS, "$ per 1M tickets", "1M-buyer sale $", "with WAF $"], item_rows)}

{_api_types(rules, prices, up, model)}

{_identity(result, new_rule)}"""
    return {"sale": sale, "targets": table(["admission every s", "target", "value", "result"], checks)}


def _api_types(rules: list[dict[str, Any]], prices: dict[str, Any], up: int, model: dict[str, Any]) -> str:
    """The whole sale behind the template's REST API and behind an HTTP API, from the same requests."""
    columns: list[Column] = [
        ("rule", "rule"),
        ("admission every s", "every"),
        ("requests (1M)", lambda r: f"{r['dollars']['api_types']['requests'] * up:,}"),
        ("REST API $", lambda r: f"{r['dollars']['api_types']['REST API']['sale'] * up:,.2f}"),
        ("HTTP API $", lambda r: f"{r['dollars']['api_types']['HTTP API']['sale'] * up:,.2f}"),
        ("HTTP saves $", lambda r: f"{r['dollars']['api_types']['saving'] * up:,.2f}"),
        ("REST + WAF $", lambda r: f"{r['dollars']['api_types']['REST API']['sale_with_waf'] * up:,.2f}"),
        ("HTTP + CloudFront + WAF $", lambda r: f"{r['dollars']['api_types']['HTTP API']['sale_with_waf'] * up:,.2f}"),
        ("REST $ per ticket", lambda r: f"{r['dollars']['per_ticket']:.6f}"),
        ("REST $ per buyer", lambda r: f"{r['dollars']['per_buyer']:.7f}"),
    ]
    return f"""The whole sale of {model["buyers"] * up:,} buyers behind the template's REST API and behind an HTTP API,
from the same requests (benchmarks/dollars.py `api_types`): only API Gateway's price changes (REST
${prices["api_gateway_rest_per_million"]}, HTTP ${prices["api_gateway_http_per_million"]} per million), plus, on HTTP,
each function verifying the JWT itself (PyJWT, RS256, the key set cached; its CPU time measured here and billed at the
function's memory) so that a refusal keeps the API's error shape. X-Ray is the same (the functions' active tracing
starts the traces). WAF attaches to a REST stage directly; an HTTP API takes it only through CloudFront, whose
requests are ${prices["cloudfront_https_per_million"]} per million more. Per ticket sold and per buyer in line, on REST
(docs/DESIGN.md: why the API stays REST).

{columns_table(columns, rules)}"""


def _identity(result: dict[str, Any], new_rule: list[dict[str, Any]]) -> str:
    """Cognito's calls (sign-ins and refreshes share one quota) and its per-user price, apart from the sale."""
    plans = [{**plan, "every": r["every"]} for r in new_rule for plan in r["identity"]["plans"]]
    identity = result["cadences"][0]["rules"][0]["identity"]
    mau = identity["mau_dollars"]
    columns: list[Column] = [
        ("admission every s", "every"),
        ("plan", "plan"),
        ("Cognito calls / buyer", "calls_per_buyer"),
        ("refreshes in line / buyer", "refreshes_in_line_per_buyer"),
        ("of which after the sell-out", "refreshes_after_sold_out_per_buyer"),
        ("buyers refreshing in line", lambda plan: f"{plan['buyers_refreshing_in_line']:,}"),
        ("busiest second /s", lambda plan: f"{plan['peak_per_second']:,}"),
        ("busiest minute, mean /s", lambda plan: f"{plan['busiest_minute_per_second']:,}"),
    ]
    return f"""Cognito under `retryAfterSeconds`, {identity["buyers"]:,} buyers (docs/DESIGN.md "Identity that lasts the
wait"). Each buyer's app holds an ID token from its join to its last request (its last poll, or the end of its
shopping); a token past its lifetime is refreshed at the next request, counted at the expiry itself (an upper bound
on how close refreshes fall). A sign-in and a refresh are each one call on the user pools' UserAuthentication
quota, {identity["quota_per_second"]} requests/s per account and region by default (adjustable, bought in Service
Quotas). The third plan: the opening's joiners (the first {result["cadences"][0]["model"]["opening_seconds"]:g} s)
refresh at a random moment in the hours before the lobby opens; later joiners sign in as they join. A refresh after
the last seat was sold is a waiter far back whose next poll learns `SOLD_OUT`; an app that reads the public concert's
`soldOut` (no JWT, cached) before refreshing makes none of those. The busiest second is the run's times
{result["scale_up"]} (noisy where calls are sparse); the busiest minute's mean rate is the figure to size a quota by.

{columns_table(columns, plans)}

Cognito's per-user price is apart from the sale (it follows the operator's users: a buyer active in several sales
in a month counts once): {identity["buyers"]:,} monthly active users cost ${mau["essentials"]:,.2f} a month on the
Essentials tier (new pools' default: $0.015 per MAU past 10,000 free) or ${mau["lite"]:,.2f} on Lite ($0.0055 per MAU
to 100,000, $0.0046 to 1,000,000, then less; us-east-1 list prices, 2025-06)."""


def _rule_columns(up: int) -> list[Column]:
    """The columns of a cadence's table, one row per polling rule; "1M" figures are the sale's times `up`."""
    return [
        ("rule", "rule"),
        ("polls / waiter", lambda r: _median_p99(r["polls_per_waiter"])),
        ("polls / admitted waiter", lambda r: _median_p99(r["polls_per_admitted_waiter"])),
        ("polls / ticket", "polls_per_ticket"),
        ("peak polls/s (1M)", lambda r: f"{r['routes']['GET queue/position']['peak_per_second'] * up:,}"),
        ("after the opening", lambda r: f"{r['polls_peak_after_opening_per_second'] * up:,}"),
        ("mean polls/s (1M)", lambda r: f"{r['routes']['GET queue/position']['mean_per_second'] * up:,.0f}"),
        ("peak requests/s, all routes (1M)", lambda r: f"{r['all_routes_peak_per_second'] * up:,}"),
        ("Lambda concurrency (1M)", lambda r: f"{sum(x['peak_concurrency'] for x in r['routes'].values()) * up:,.0f}"),
        ("estimate error", lambda r: _percent(r["estimate_error"]["median"])),
        (
            "ACTIVE time lost p99 / max",
            lambda r: " / ".join(_percent(r["turn_time_lost"][q], 1) for q in ("p99", "max")),
        ),
        ("sold out after", lambda r: _minutes(r["sold_out_after_seconds"])),
        ("$ polls / 1M tickets", lambda r: r["dollars"]["polls_per_million_tickets"]),
        ("$ / 1M tickets", lambda r: r["dollars"]["per_million_tickets"]),
        ("1M-buyer sale $", lambda r: f"{r['dollars']['sale'] * up:,.2f}"),
    ]


def _median_p99(figures: dict[str, Any]) -> str:
    return f"{figures['median']} / {figures['p99']}"


# A route's figures in the 1M-buyer sale (times `up`), each with its format.
_ROUTE_FIGURES = (
    ("requests", ","),
    ("peak_per_second", ","),
    ("mean_per_second", ",.0f"),
    ("peak_concurrency", ",.0f"),
)
_LINE_ITEMS = ("api_gateway", "lambda", "dynamodb", "cloudwatch_logs", "xray")


def _reading(cadence: dict[str, Any]) -> str:
    """The ratios between the rules, in a sentence."""
    by_rule = {r["rule"]: r for r in cadence["rules"]}
    new = by_rule["retryAfterSeconds"]
    ratios = ", ".join(
        f"{by_rule[name]['polls_per_ticket'] / new['polls_per_ticket']:.0f}x fewer than `{name}`"
        for name in ("2 s + 1 s / 50 places", "fixed 20 s", "every 2 s")
        if name in by_rule and new["polls_per_ticket"]
    )
    reference = by_rule.get("every 2 s", {}).get("sold_out_after_seconds")
    later = ""
    if reference and new["sold_out_after_seconds"]:
        later = f"; it sells out {(new['sold_out_after_seconds'] / reference - 1) * 100:.1f} % later than `every 2 s`"
    return f"Polls per ticket under `retryAfterSeconds`: {ratios}{later}."


def _minutes(seconds: float | None) -> str:
    return "not sold out" if seconds is None else f"{seconds / 60:.1f} min"


SECTIONS: dict[str, Callable[[dict[str, Any]], Blocks]] = {
    "cost": cost,
    "sale": sale,
    "hotkeys": hotkeys,
    "coldstart": coldstart,
    "dollars": dollars,
    "scale": scale,
    "lobby": lobby,
    "scheduler": scheduler,
    "stadium": stadium,
}
BLOCK_START = "<!-- generated from docs/benchmarks/{name}.json, block {part}: do not edit -->"
BLOCK_END = "<!-- end of generated block -->"
# A block's text is optional, matched lazily: markers just added around nothing are a block too.
BLOCK = re.compile(
    r"(<!-- generated from docs/benchmarks/(\w+)\.json, block (\w+): do not edit -->\n)(?:(.*?)\n)??"
    r"(<!-- end of generated block -->)",
    re.DOTALL,
)


def fill_blocks(document: str, results: Mapping[str, dict[str, Any] | None]) -> str:
    """The document with every generated block rendered again from its benchmark's result (or "Not run yet").

    Raises ValueError, so that nothing is written, when a block a benchmark renders is missing from the document
    (or there twice), when the document has a block no benchmark renders, or a start marker without its end.
    """
    rendered = {name: SECTIONS[name](result) for name, result in results.items() if result}
    found = [(match[2], match[3]) for match in BLOCK.finditer(document)]
    problems = [
        f"no block {BLOCK_START.format(name=name, part=part)} ... {BLOCK_END} (or more than one)"
        for name, parts in rendered.items()
        for part in parts
        if found.count((name, part)) != 1
    ]
    problems += [
        f"block {part} of {name}.json: no benchmark renders it"
        for name, part in found
        if name not in results or (name in rendered and part not in rendered[name])
    ]
    if document.count("<!-- generated from") != len(found):
        problems.append(f"a start marker misspelled or without its end marker {BLOCK_END}")
    if problems:
        raise ValueError("docs/BENCHMARKS.md: " + "; ".join(problems))

    def fill(match: re.Match[str]) -> str:
        name, part = match[2], match[3]
        text = rendered[name][part] if name in rendered else f"Not run yet: `make bench-{name}`."
        return f"{match[1]}{text}\n{match[5]}"

    return BLOCK.sub(fill, document)
