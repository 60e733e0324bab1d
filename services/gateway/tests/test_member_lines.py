"""The lines of "add several people" (gateway.member_pages.parse_people): what is sent to accounts, and what the
gateway rejects itself so that one line does not refuse the others."""

from gateway.member_pages import parse_people


def test_each_line_is_a_person_numbered_as_the_text_area_shows_it() -> None:
    text = "\r\n".join(
        [
            "Camille Martin ; camille@exemple.fr",
            "",
            "Karim\tBenali\tkarim@exemple.fr\t\t",  # a spreadsheet row: cells, then empty ones
            "Dupont, Jean, jean@exemple.fr",
            "Sans séparateur",
            "Rien après ;",
            "Nul\x00 ; nul@exemple.fr",
            "x" * 401 + " ; long@exemple.fr",
        ]
    )
    people, rejected = parse_people(text)
    assert people == [
        (1, "Camille Martin", "camille@exemple.fr"),
        (3, "Karim Benali", "karim@exemple.fr"),
        (4, "Dupont Jean", "jean@exemple.fr"),
    ]
    assert [(row["line"], row["code"]) for row in rejected] == [
        (5, "line_format"),
        (6, "email_missing"),
        (7, "name_invalid"),
        (8, "name_too_long"),
    ]
    assert rejected[0]["text"] == "Sans séparateur"
