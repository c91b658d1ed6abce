# SPDX-License-Identifier: MIT
"""Hints follow the mistake the answer made. Each test is named after the mistake."""

from __future__ import annotations

from exercise_answers import BUILD_HIGH, BUILD_L2, REFUSE_EBUSY

from pvlab.exercises import check, reset_hints, show
from pvlab.exercises.checking import grade
from pvlab.exercises.kinds.walk import run_walk

NO_SELFMAP = BUILD_L2.replace("    1: {to: l1, flags: [P, A]}\n", "")
NO_DATA = BUILD_L2.replace("    0: {to: data, flags: [P, RW, A, D]}\n", "")
SELFMAP_RW = BUILD_L2.replace("1: {to: l1, flags: [P, A]}", "1: {to: l1, flags: [P, RW, A]}")


def first_hint(ex_id: str, answer: object) -> tuple[str, str]:
    reset_hints(ex_id)
    fb = check(ex_id, answer)
    assert not fb.ok
    return fb.message, fb.hint


def test_build_l2_pin_succeeded_but_the_l1_does_not_map_itself() -> None:
    message, hint = first_hint("build-l2", NO_SELFMAP)
    assert "does not map itself" in message
    assert "map the L1's own frame" in hint or "maps the L1's own" in hint
    assert "must succeed" not in hint and "pin" not in hint.lower()
    reset_hints("build-l2")
    hints = [check("build-l2", NO_SELFMAP).hint for _ in range(3)]
    assert "without RW" in hints[2] or "read-only (no RW)" in hints[2]


def test_build_l2_pin_succeeded_but_no_data_page_is_writable() -> None:
    message, hint = first_hint("build-l2", NO_DATA)
    assert "no data page writable" in message
    assert "RW" in hint and "must succeed" not in hint


def test_build_l2_pin_failed_because_the_l1_maps_itself_writable() -> None:
    message, hint = first_hint("build-l2", SELFMAP_RW)
    assert "No step pins an L2 successfully" in message
    assert "no successful" in hint


def test_build_l2_first_hint_counts_the_frames_it_lists() -> None:
    hint = show("build-l2").hints[0]
    assert "three frames" in hint and "four" not in hint
    assert all(name in hint for name in ("the L2", "the L1", "a data page"))


def test_walk_stopped_one_level_early_is_not_called_following_the_wrong_entry() -> None:
    for ex_id in ("walk-2level", "walk-pae", "walk-4level"):
        p = show(ex_id)
        last_table = run_walk(p.data).steps[-1].table
        message, hint = first_hint(ex_id, last_table | (p.answer & 0xFFF))
        assert "stopped one level early" in message, ex_id
        assert "wrong entry" not in message and "not the one the VA's index" not in message
        assert "L1 entry" in hint


def test_walk_stopped_two_levels_early() -> None:
    p = show("walk-4level")
    table = run_walk(p.data).steps[-2].table
    message, _ = first_hint("walk-4level", table | (p.answer & 0xFFF))
    assert "stopped 2 levels early" in message


def test_walk_following_a_wrong_entry_still_says_so() -> None:
    p = show("walk-2level")
    message, _ = first_hint("walk-2level", p.answer ^ 0x40000)
    assert "not the one the VA's index selects" in message


def test_cr3_encode_rotated_but_not_truncated_to_32_bits() -> None:
    mfn = show("cr3-encode").data["mfn"]
    assert mfn >> 20, "the exercise's frame must be above 4 GiB for this mistake"
    message, hint = first_hint("cr3-encode", (mfn << 12) | (mfn >> 20))
    assert "rotated" in message and "bit 31" in message
    assert "32-bit number" in hint
    assert "not the extended-CR3 value" not in message


def test_cr3_encode_shifted_but_not_rotated_keeps_its_own_message() -> None:
    mfn = show("cr3-encode").data["mfn"]
    message, _ = first_hint("cr3-encode", mfn << 12)
    assert "does not fit in 32 bits" in message


def test_build_prompts_say_name_is_optional_and_answers_without_it_pass() -> None:
    for ex_id, answer in (("build-l2", BUILD_L2), ("build-high-l3", BUILD_HIGH),
                          ("refuse-ebusy", REFUSE_EBUSY)):
        assert "`name:`" in show(ex_id).question
        nameless = "\n".join(line for line in answer.splitlines()
                             if not line.startswith("name:")) + "\n"
        assert "name:" not in nameless
        assert grade(ex_id, nameless), ex_id
