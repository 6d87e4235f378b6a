from .test_browser_portal import switch_language, expect_chrome
pytest_plugins = ["tests.browser_fixtures"]

def test_untranslated_switch(make_tab):
    page = make_tab(lang="pt").page
    page.goto("/camara/programas-estrategicos")
    expect_chrome(page, "pt")
    switch_language(page, "pt", "en", "x")
    print(page.url)
