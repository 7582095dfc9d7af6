"""The fault harness's personal-data check: a value found as itself, not inside a number.

CI failed once on `process_cpu_seconds_total 2.7600000000000002`: the simulation's phone
numbers are `000` and an index, so `00000000000` and `00000000002` sat inside the float.
"""

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from services.tools.faults.load import personal_values_in

PHONES = ["00000000000", "00000000004", "00012345678"]  # the simulation's form: f"000{i:08d}"


def test_a_float_in_metrics_holds_no_phone():
    registry = CollectorRegistry()
    Gauge("process_cpu_seconds_total", "cpu", registry=registry).set(0.1 + 0.2)
    exposition = generate_latest(registry).decode()
    assert "00000000004" in exposition  # the digits are there: 0.30000000000000004
    assert personal_values_in(exposition, PHONES) == []


def test_a_phone_written_into_a_log_line_is_found():
    for line in (
        "household h1 phone=00012345678 refused",
        '{"phone": "00012345678"}',
        "00012345678",
        "call 00012345678.",
        "电话00012345678，",
    ):
        assert personal_values_in(line, PHONES) == ["00012345678"], line


def test_a_phone_found_after_a_joined_occurrence_of_it():
    text = "cpu 1.000123456789 then phone 00012345678 here"
    assert personal_values_in(text, PHONES) == ["00012345678"]


def test_names_and_citizen_ids_are_found_anywhere():
    names = ["王某00012", "FAKE110101199001011234"]
    assert personal_values_in("name=王某00012 id=FAKE110101199001011234", names) == names
    assert personal_values_in("王某000123", ["王某00012"]) == []  # another name: 王某000123
    assert personal_values_in("xFAKE110101199001011234y", names[1:]) == names[1:]


def test_nothing_personal_in_a_clean_text():
    assert personal_values_in("", PHONES) == []
    assert personal_values_in("shouwang_events_total 12\n", [*PHONES, "王某00012"]) == []
