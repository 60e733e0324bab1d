"""What a browser test checks on any page: axe-core finds no serious or critical violation, the page reflows at
320 px without scrolling sideways, and the keyboard focus can be seen."""

from pathlib import Path
from typing import Any

from playwright.async_api import Page

SCREENSHOTS = Path(__file__).parents[2] / ".run" / "test-artefacts" / "screenshots"

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
NARROWEST = 320  # WCAG 1.4.10 reflow: no horizontal scrolling at 320 CSS pixels
BLOCKING = ("serious", "critical")  # axe impacts that fail a page


async def assert_accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the page as it is now; the rule ids and nodes if any."""
    violations: list[dict[str, Any]] = await page.evaluate(
        """async () => {
            const results = await axe.run(document, {resultTypes: ["violations"]});
            return results.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => n.target.join(" ") + " — " + n.failureSummary),
            }));
        }"""
    )
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, f"axe-core on {page.url}:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"][:5]) for v in blocking
    )


async def assert_no_horizontal_scroll(page: Page) -> None:
    """At 320 px wide the page reflows: nothing sticks out sideways (wide tables scroll inside .table-wrap)."""
    size = page.viewport_size or DESKTOP
    await page.set_viewport_size({"width": NARROWEST, "height": size["height"]})
    try:
        overflow = await page.evaluate(
            """() => {
                const width = document.documentElement.clientWidth;
                if (document.documentElement.scrollWidth <= width) return null;
                const wide = [...document.querySelectorAll("body *")].filter((e) => {
                    const box = e.getBoundingClientRect();
                    const escapes = ["absolute", "fixed"].includes(getComputedStyle(e).position);
                    return box.right > width + 1 && (escapes || !e.closest(".table-wrap"));
                });
                return {scrollWidth: document.documentElement.scrollWidth, width,
                        culprits: wide.slice(0, 5).map((e) => e.tagName.toLowerCase()
                            + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : ""))};
            }"""
        )
        assert overflow is None, f"{page.url} scrolls sideways at {NARROWEST} px: {overflow}"
    finally:
        await page.set_viewport_size(size)


async def focus_outline(page: Page) -> dict[str, str]:
    """The focused element and its computed outline: a keyboard user must see where they are."""
    return await page.evaluate(
        """() => {
            const e = document.activeElement;
            const style = getComputedStyle(e);
            return {element: e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.name ? "[" + e.name + "]" : ""),
                    style: style.outlineStyle, width: style.outlineWidth};
        }"""
    )


async def assert_focus_visible(page: Page) -> None:
    outline = await focus_outline(page)
    assert outline["style"] != "none" and outline["width"] not in ("0px", ""), f"focus not visible: {outline}"


async def screenshots(page: Page, name: str) -> None:
    """The page as it is now, whole, at desktop and phone widths: `<name>--desktop.png`, `<name>--phone.png`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or DESKTOP
    try:
        for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            await page.set_viewport_size(viewport)
            await page.screenshot(path=SCREENSHOTS / f"{name}--{label}.png", full_page=True)
    finally:
        await page.set_viewport_size(size)
