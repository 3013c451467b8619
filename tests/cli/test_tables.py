"""Tables measure text by the cells a terminal gives it: a CJK character takes two. The expected lines
are laid out by hand: columns two cells apart, each as wide as its widest cell."""

from __future__ import annotations

from casework.cli_support import emit, print_table


def test_cjk_cells_take_two_columns(capsys):
    print_table([{"customer": "王芳", "team": "华东", "n": 3},
                 {"customer": "欧阳娜娜娜", "team": "north-east", "n": 12}])
    lines = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    # customer: widest is 欧阳娜娜娜, 5 characters of 2 cells = 10; team: north-east = 10; n: 12 = 2.
    assert lines == [
        "customer    team        n",
        "王芳        华东        3",
        "欧阳娜娜娜  north-east  12",
    ]


def test_empty_and_missing_values(capsys):
    print_table([{"a": None, "b": "x"}, {"a": "甲", "b": None}])
    # a: 甲 is 2 cells wide, so b starts at cell 2 + 2.
    assert [line.rstrip() for line in capsys.readouterr().out.splitlines()] == ["a   b", "    x", "甲"]
    print_table([], empty="(no cases match)")
    assert capsys.readouterr().out == "(no cases match)\n"


def test_csv_and_json_keep_the_text_as_it_is(capsys):
    emit([{"customer": "王芳", "n": 3}], "csv")
    assert capsys.readouterr().out.splitlines() == ["customer,n", "王芳,3"]
    emit([{"customer": "王芳", "n": 3}], "json")
    assert '"customer": "王芳"' in capsys.readouterr().out
