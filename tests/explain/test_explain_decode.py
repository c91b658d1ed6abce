# SPDX-License-Identifier: MIT
"""The numbers of Xen's memory-management messages, decoded (lines taken from real logs)."""

from __future__ import annotations

from pvlab.explain import explain_line
from pvlab.explain.decode import count_info, errno, flag_word, mfn_place, type_info


def test_flag_word_bit_23_is_nx_not_a_pte_bit_23() -> None:
    assert flag_word(0x800000, 3).startswith("NX (PTE bit 63)")
    assert flag_word(0x400000, 1).startswith("BIT62 (PTE bit 62)")  # _PAGE_GNTTAB
    assert flag_word(0x1000, 3).startswith("BIT52 (PTE bit 52)")


def test_flag_word_bit_7_is_pat_in_an_l1_and_ps_above() -> None:
    assert flag_word(0x80, 1).startswith("PAT")
    assert flag_word(0x80, 2).startswith("PS")
    assert flag_word(0x18, 1).startswith("PWT|PCD (PTE bits 3, 4)")


def test_type_info_of_a_pinned_validated_l1() -> None:
    assert type_info(0x2C00000000000001) == "type l1, type count 1, pinned, validated"
    assert type_info(0x6000000000000001) == "type l3, type count 1, not validated"
    assert type_info(0xE400000000000001) == "type writable, type count 1, validated"


def test_count_info_count_and_allocated() -> None:
    assert count_info(0x8000000000000002) == "count 2, allocated"
    assert count_info(0x0000000000000001) == "count 1"


def test_errno_and_mfn_placement() -> None:
    assert errno(-22) == "-EINVAL" and errno(-34) == "-ERANGE" and errno(-16) == "-EBUSY"
    assert mfn_place(0xFFFFF).endswith("below 4 GiB")
    assert mfn_place(0x100000).endswith("at or above 4 GiB")


def test_real_bad_l3_flags_line() -> None:
    ex = explain_line("(XEN) arch/x86/mm.c:1157:d0v0 Bad L3 flags 800000")
    assert ex.matched and ex.rule == "l3_flags"
    assert ex.xen_function.startswith("get_page_from_l3e")  # line 1157 of 4.17.5: promotion
    assert ex.decoded["flags"].value == 0x800000
    assert ex.decoded["flags"].meaning.startswith("NX")
    assert ex.vcpu == "d0v0" and ex.position == "arch/x86/mm.c:1157"
    assert "clear NX" in ex.fix


def test_real_update_flags_line_names_mod_l1_entry() -> None:
    ex = explain_line("(XEN) arch/x86/mm.c:2160:d0v0 Bad L1 flags 400000")
    assert ex.xen_function.startswith("mod_l1_entry")
    assert ex.decoded["flags"].meaning.startswith("BIT62")


def test_real_validation_failure_decodes_caf_and_taf() -> None:
    ex = explain_line("(XEN) arch/x86/mm.c:2649:d0v0 Error while validating mfn 7fa25 (pfn 00002) "
                      "for type 6000000000000000: caf=8000000000000002 taf=6000000000000001")
    d = ex.decoded
    assert ex.format_id == "validate_error" and ex.xen_function == "validate_page"
    assert d["mfn"].value == 0x7FA25 and d["mfn"].meaning.endswith("below 4 GiB")
    assert d["type"].meaning == "type l3"
    assert d["caf"].meaning == "count 2, allocated"
    assert d["taf"].meaning == "type l3, type count 1, not validated"


def test_real_bad_type_line() -> None:
    ex = explain_line("(XEN) arch/x86/mm.c:2940:d0v0 Bad type (saw 2400000000000001 != exp "
                      "4000000000000000) for mfn 7fbda (pfn 00001)")
    assert ex.rule == "type_conflict" and ex.xen_function == "_get_page_type"
    assert ex.decoded["saw"].meaning == "type l1, type count 1, validated"
    assert ex.decoded["exp"].meaning == "type l2"


def test_real_errno_lines() -> None:
    pin = explain_line("(XEN) arch/x86/mm.c:3576:d0v0 Error -22 while pinning mfn 7ffda")
    assert pin.decoded["rc"].value == -22 and pin.decoded["rc"].meaning == "-EINVAL"
    fail = explain_line("(XEN) arch/x86/mm.c:1366:d0v0 Failure -16 in promote_l1_table: slot 0x1ac")
    assert fail.format_id == "promote_l1_failure"
    assert fail.decoded["rc"].meaning == "-EBUSY" and fail.decoded["slot"].value == 0x1AC


def test_real_get_page_line_names_owners() -> None:
    ex = explain_line("(XEN) d0v0 Error mfn 00001: rd=d37 od=d[IO] caf=8000000000000001 "
                      "taf=e400000000000001")
    assert ex.rule == "not_owned" and ex.printer == "gprintk"
    assert ex.decoded["od"].value == "d[IO]"
    assert ex.decoded["taf"].meaning == "type writable, type count 1, validated"
    owner = explain_line("(XEN) arch/x86/mm.c:988:d0v0 pg_owner d0 l1e_owner d0, but "
                         "real_pg_owner d32754")
    assert owner.rule == "l1_foreign" and owner.decoded["real_pg_owner"].meaning == "dom_xen"


def test_real_l1_entry_and_invalid_m2p() -> None:
    ex = explain_line("(XEN) arch/x86/mm.c:1040:d0v0 Error getting mfn 13de00 (pfn "
                      "ffffffffffffffff) from L1 entry 000000013de00081 for l1e_owner d0, "
                      "pg_owner d0")
    assert ex.decoded["mfn"].meaning.endswith("at or above 4 GiB")
    assert "INVALID_M2P_ENTRY" in ex.decoded["pfn"].meaning
    assert ex.decoded["pte"].meaning.startswith("mfn 0x13de00")
    assert "P|PAT" in ex.decoded["pte"].meaning
