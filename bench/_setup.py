"""Shared set-up of the benchmarks: a fresh PostgreSQL database with the schema and a bank.

Benchmarks never touch the development or test databases: they create (and drop) their own.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BENCH_DB = os.environ.get("BENCH_DATABASE", "finaegis_bench")
PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def django_on_fresh_database(name: str | None = None) -> None:
    """Recreate the bench database (`name`, default BENCH_DB), point Django at it, migrate and
    load reference data."""
    import psycopg

    name = name or BENCH_DB
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    # Production settings: DEBUG would wrap every cursor to record its queries.
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdef")
    os.environ.setdefault("EVENT_HASH_KEY", "bench-only-event-hash-key-0123456789abcdef")
    os.environ["DATABASE_URL"] = f"{PG_SERVER}/{name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finaegis.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("load_reference_data", verbosity=0)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) clock ticks of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(values) - values[3] - values[4], sum(values)


def cpu_clock() -> tuple[float, float]:
    """(CPU seconds of this process and its reaped children, busy CPU seconds of the whole
    machine): the second counts what the database and the kernel spend for the benchmark too,
    which is what bounds throughput when they share the cores with it."""
    times = os.times()
    own = times.user + times.system + times.children_user + times.children_system
    return own, machine_cpu()[0] / os.sysconf("SC_CLK_TCK")


@dataclass
class Measurement:
    name: str
    operations: int
    seconds: float
    latencies: list[float]
    process_cpu: float = 0.0  # seconds, from cpu_clock(), when measured
    machine_cpu: float = 0.0

    @property
    def per_second(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

    def cpu_per_operation(self) -> tuple[float, float]:
        """Milliseconds of CPU per operation: the machine's, and this process's share of it."""
        if not self.operations:
            return 0.0, 0.0
        return (
            self.machine_cpu / self.operations * 1000,
            self.process_cpu / self.operations * 1000,
        )

    def line(self) -> str:
        text = (
            f"{self.name:<38} {self.per_second:>9.1f}/s  p50 {self.percentile(50):7.2f} ms"
            f"  p99 {self.percentile(99):7.2f} ms  (n={self.operations})"
        )
        if self.machine_cpu:
            machine, process = self.cpu_per_operation()
            busy = self.machine_cpu / (self.seconds * len(os.sched_getaffinity(0))) * 100
            text += (
                f"\n{'':<38} CPU {machine:5.2f} ms/op (Python {process:5.2f}),"
                f" machine {busy:3.0f}% busy"
            )
        return text


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
