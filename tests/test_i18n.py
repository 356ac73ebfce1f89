"""English and Korean: the locale from the `lang` cookie, else Accept-Language,
else English; every page and message in both; numbers, times and durations
formatted per locale; the JSON error codes never translated; the switcher's
refusals; and a catalog that cannot fall behind the sources."""

import re
from datetime import datetime
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask import render_template
from flask_babel import lazy_gettext
from helpers import admit_and_enter

from app import events, i18n
from app.errors import AppError
from app.waiting_room import QueueStatus
from app.web import fragments

# The test app's JWT_SECRET is short on purpose; pyjwt warns about it.

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "app" / "translations" / "ko" / "LC_MESSAGES" / "messages.po"
KO = {"Accept-Language": "ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}
HX = {"HX-Request": "true"}
SECTIONS = [{"name": "Floor", "rows": 1, "seats_per_row": 4, "price": 12000}]
# "2030. 1. 5. 오후 3:04:05": the Korean date and time, AM/PM in words.
KO_DATETIME = r"\d{4}\. \d{1,2}\. \d{1,2}\. (오전|오후) \d{1,2}:\d\d:\d\d"
KO_SHORT = r"\d{4}\. \d{1,2}\. \d{1,2}\. (오전|오후) \d{1,2}:\d\d"


def text(response) -> str:
    return response.get_data(as_text=True)


def html_lang(page: str) -> str:
    match = re.search(r'<html lang="([^"]+)">', page)
    assert match, page[:300]
    return match.group(1)


@pytest.fixture
def first_seat(app, event) -> int:
    from app.models import Seat

    with app.app_context():
        return Seat.select(Seat.id).where(Seat.event == event.id).order_by(Seat.id).first().id


# Pages in Korean


def test_a_korean_browser_gets_the_public_pages_in_korean(client, event):
    pages = {
        url: text(client.get(url, headers=KO))
        for url in ("/", f"/events/{event.id}", "/auth/login", "/auth/register")
    }
    assert all(html_lang(page) == "ko" for page in pages.values())
    assert "<h1>판매 중인 공연</h1>" in pages["/"]
    assert "입장 진행 중 · 대기 0명" in pages["/"]
    event_page = pages[f"/events/{event.id}"]
    assert "<dt>입장</dt><dd>진행 중: 순서대로 입장하고 있습니다</dd>" in event_page
    assert "<dd>0명 / 최대 10,000명</dd>" in event_page  # numbers grouped
    assert "로그인하고 대기열 참여하기" in event_page
    assert (
        "<h1>로그인</h1>" in pages["/auth/login"]
        and "아직 계정이 없으신가요?" in pages["/auth/login"]
    )
    assert "비밀번호 (8자 이상)" in pages["/auth/register"]
    for page in pages.values():  # the nav too, and no English left in it
        assert re.search(r'<a href="/auth/login(\?next=[^"]*)?">로그인</a>', page)
        assert "Log in" not in page
        assert "<title>" in page and "Ticket drop" not in page


def test_english_stays_the_default(client, event):
    for headers in ({}, EN, {"Accept-Language": "fr-FR,de;q=0.8"}):
        page = text(client.get(f"/events/{event.id}", headers=headers))
        assert html_lang(page) == "en"
        assert "Log in to join the queue" in page and "로그인" not in page


def test_the_waiting_page_is_one_page_per_language(app, client, event, make_user, login):
    """Still cacheable: the same for everyone who reads the same language, and
    its Vary header names what chooses the language."""
    a = login(app.test_client(), make_user())
    b = login(app.test_client(), make_user(staff=True))
    a.post(f"/events/{event.id}/join")
    url = f"/events/{event.id}/waiting"
    korean = [c.get(url, headers=KO) for c in (client, a, b)]
    assert korean[0].data == korean[1].data == korean[2].data
    english = client.get(url, headers=EN)
    assert english.data != korean[0].data
    for response in (*korean, english):
        assert "public" in response.headers["Cache-Control"]
        assert "Set-Cookie" not in response.headers
        assert {v.strip() for v in response.headers["Vary"].split(",")} == {
            "Accept-Language",
            "Cookie",
        }
    page = text(korean[0])
    assert html_lang(page) == "ko"
    assert "<h1>Test event: 예매 대기</h1>" in page
    assert "대기 순번을 확인하고 있습니다…" in page
    assert 'title="나의 대기 순번"' in page  # the <noscript> frame


def test_the_status_fragment_in_korean(app, make_user, login, event):
    client = login(app.test_client(), make_user())
    client.post(f"/events/{event.id}/join", headers=KO)
    fragment = text(client.get(f"/events/{event.id}/waiting/status", headers={**HX, **KO}))
    assert "나의 대기 순번은 <strong>1</strong>번입니다." in fragment
    assert "대기 인원 1명." in fragment
    assert re.search(r"약 1초 뒤에 다시 확인합니다\.", fragment), fragment
    assert 'aria-label="대기 진행률"' in fragment and ">대기열 나가기</a>" in fragment
    # Without JavaScript: the framed page, in Korean too.
    framed = text(client.get(f"/events/{event.id}/waiting/status", headers=KO))
    assert html_lang(framed) == "ko" and "<title>나의 대기 순번</title>" in framed


def test_the_status_fragment_says_the_wait_per_locale(app):
    """Positions and counts grouped, the ETA in the locale's units."""
    status = QueueStatus(
        "waiting",
        position=1234,
        waiting_total=56_789,
        poll_after=5.0,
        eta_range={"from": 240, "to": 375},
    )
    pages = {}
    for code, headers in (("ko", KO), ("en", EN)):
        view = fragments.status_view(status, 2000, "/poll", "/leave", code)
        with app.test_request_context(headers=headers):
            pages[code] = render_template("waiting/_status.html", status=status, view=view)
        # The hot path's skeletons say the same, byte for byte.
        assert app.wsgi_app.wsgi_app.skeletons.render(code, view).decode() == pages[code]
    korean, english = pages["ko"], pages["en"]
    assert "나의 대기 순번은 <strong>1,234</strong>번입니다." in korean
    assert "대기 인원 56,789명." in korean
    assert "예상 대기 시간: 4분 ~ 6분." in korean
    assert "약 5초 뒤에 다시 확인합니다." in korean
    assert "You are number <strong>1,234</strong> in the queue." in english
    assert "56,789 people waiting." in english
    assert "Estimated wait: 4 min to 6 min." in english


def test_seat_map_and_hold_messages_in_korean(app, event, customer, make_user, login, first_seat):
    _, client = customer
    admit_and_enter(app, client, event.id)
    first = first_seat
    page = text(client.get(f"/events/{event.id}/seats", headers=KO))
    assert html_lang(page) == "ko" and "<h1>Test event: 좌석 선택</h1>" in page
    assert 'aria-label="Floor A열 1번, 좌석 1, 12,000포인트, 예매 가능"' in page
    assert "좌석 배치도에서 최대 4석까지 선택할 수 있습니다." in page
    assert 'data-expired="만료"' in page  # the word countdown.js shows at zero

    panel = text(
        client.post(
            f"/events/{event.id}/seats/hold", data={"seat": str(first)}, headers={**HX, **KO}
        )
    )
    assert re.search(r"Floor A열 1번 좌석을 [45]분 동안 선택해 두었습니다\.", panel), panel
    assert (
        'aria-label="Floor A열 1번, 좌석 1, 12,000포인트, '
        '내가 선택한 좌석: 누르면 선택이 취소됩니다"'
    ) in panel
    assert "합계 12,000포인트." in panel and ">결제하기</a>" in panel
    assert 'aria-label="Floor A열 1번 선택 취소"' in panel

    # A refusal from the seats module, put into Korean when it is shown.
    other = login(app.test_client(), make_user())
    admit_and_enter(app, other, event.id)
    refused = text(
        other.post(
            f"/events/{event.id}/seats/hold", data={"seat": str(first)}, headers={**HX, **KO}
        )
    )
    assert "다른 분이 Floor A열 1번 좌석을 선택 중입니다." in refused


def test_checkout_confirmation_and_bookings_in_korean(app, event, customer, first_seat):
    _, client = customer
    admit_and_enter(app, client, event.id)
    client.post(f"/events/{event.id}/seats/hold", data={"seat": str(first_seat)}, headers=HX)
    page = text(client.get(f"/events/{event.id}/checkout", headers=KO))
    assert "<h1>결제: Test event</h1>" in page
    assert "<td>Floor A열 1번</td>" in page
    assert "보유 포인트: 100,000포인트, 결제 후 남는 포인트: 88,000." in page
    assert "12,000포인트 결제하기" in page and 'data-expired="만료"' in page
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', page).group(1)

    done = client.post(f"/events/{event.id}/checkout", data={"idempotency_key": key}, headers=KO)
    assert done.status_code == 302
    confirmation = text(client.get(done.headers["Location"], headers=KO))
    assert "<h1>예매가 완료되었습니다</h1>" in confirmation
    assert re.search(r"Test event 예매 번호는 <strong>\d+</strong>입니다\.", confirmation)
    # Times in UTC in the HTML, in a <time> that localtime.js puts in the reader's zone.
    assert re.search(
        rf'예매 일시: <time datetime="[^"]+Z" data-local="medium">{KO_DATETIME} UTC</time>\.',
        confirmation,
    ), confirmation
    assert "88,000포인트입니다." in confirmation

    listing = text(client.get("/bookings", headers=KO))
    assert "<h1>예매 내역</h1>" in listing and "12,000포인트" in listing
    assert re.search(
        rf'<time datetime="[^"]+Z" data-local="short">{KO_SHORT} UTC</time>에 12,000포인트 결제',
        listing,
    ), listing
    english = text(client.get("/bookings", headers=EN))
    assert re.search(
        r'paid 12,000 points on <time datetime="[^"]+Z" data-local="short">'
        r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d\W[AP]M UTC</time>\.",
        english,
    ), english


def test_the_admin_pages_in_korean(app, staff, event):
    _, client = staff
    client.post(f"/admin/events/{event.id}/settings", data={"admit_rate": "1234"})
    index = text(client.get("/admin/", headers=KO))
    assert '<h1 id="events-h">관리자: 공연 목록</h1>' in index and "<td>진행 중</td>" in index
    page = text(client.get(f"/admin/events/{event.id}", headers=KO))
    assert html_lang(page) == "ko"
    assert "<dt>대기 인원</dt>" in page and "(설정값 1,234)" in page
    assert '<h2 id="audit-h">감사 로그</h2>' in page
    assert re.search(rf'<time datetime="[^"]+Z">{KO_DATETIME} UTC</time>', page), page
    assert "초당 입장 인원: 100,000 → 1,234" in page  # the form's label, no stored codes
    assert "event.update" not in page
    flashed = client.post(
        f"/admin/events/{event.id}/settings", data={"admit_rate": "5"}, headers=KO
    )
    after = text(client.get(flashed.headers["Location"], headers=KO))
    assert "저장했습니다: 초당 입장 인원 = 5" in after


# Messages: the JSON API, errors, and messages made outside a request


def test_json_errors_keep_their_code_and_speak_the_requests_language(client, event):
    url = "/api/events/999999"
    korean, english = client.get(url, headers=KO), client.get(url, headers=EN)
    assert korean.status_code == english.status_code == 404
    assert korean.json == {"error": "not_found", "message": "해당 공연을 찾을 수 없습니다."}
    assert english.json == {"error": "not_found", "message": "No such event."}
    assert "Accept-Language" in korean.headers["Vary"]

    anonymous = client.post(f"/api/events/{event.id}/queue", headers=KO)
    assert anonymous.status_code == 401
    assert anonymous.json == {"error": "login_required", "message": "먼저 로그인해 주세요."}

    # Validation: the field path stays as sent, the problem is put into words.
    short = {"email": "a@example.com", "password": "short"}
    ko = client.post("/api/auth/register", json=short, headers=KO)
    en = client.post("/api/auth/register", json=short, headers=EN)
    assert ko.status_code == en.status_code == 422
    assert ko.json == {"error": "invalid", "message": "password: 8자 이상이어야 합니다"}
    assert en.json == {"error": "invalid", "message": "password: should have at least 8 characters"}

    # A werkzeug error (no such route) and a wrong method, in Korean too.
    missing = client.get("/api/nothing-here", headers=KO)
    assert missing.status_code == 404 and missing.json["error"] == "not_found"
    assert missing.json["message"] == "페이지를 찾을 수 없습니다."
    wrong = client.put(f"/api/events/{event.id}", headers=KO)
    assert wrong.status_code == 405 and wrong.json["error"] == "method_not_allowed"
    assert wrong.json["message"] == "이 주소는 이런 방식의 요청을 받지 않습니다."


def test_the_register_form_explains_a_problem_in_korean(client):
    response = client.post(
        "/auth/register", data={"email": "a@example.com", "password": "short"}, headers=KO
    )
    assert "비밀번호: 8자 이상이어야 합니다." in text(response)


def test_a_price_in_a_message_is_formatted_when_read(app, event, make_user, login, first_seat):
    client = login(app.test_client(), make_user(points=100))
    admit_and_enter(app, client, event.id)
    seat = first_seat
    token = client.post(f"/api/events/{event.id}/seats/{seat}/hold").json["token"]
    response = client.post(
        f"/api/events/{event.id}/checkout",
        headers={"Idempotency-Key": "k1", **KO},
        json={"seats": [{"seat_id": seat, "token": token}]},
    )
    assert response.status_code == 402
    assert response.json == {
        "error": "not_enough_points",
        "message": "결제 금액은 12,000포인트인데 보유 포인트는 100포인트입니다.",
    }


def test_messages_made_outside_a_request_are_english_and_lazy(app):
    """AppError messages are made in plain modules (jobs, the command line
    call them too): English there, the reader's language in a request."""
    with app.app_context(), pytest.raises(AppError) as caught:  # as in a job: no request
        events.get(999_999)
    assert caught.value.message == "No such event."
    assert str(caught.value) == "No such event."
    with app.test_request_context(headers=KO):
        assert caught.value.message == "해당 공연을 찾을 수 없습니다."
    assert caught.value.message == "No such event."  # no app context at all
    assert str(lazy_gettext("Please log in first.")) == "Please log in first."


def test_the_429_message_in_korean(app, rebind, make_user, login, event):
    from app import create_app

    limited = create_app(
        {
            **app.test_settings,
            "RATELIMIT_ENABLED": True,
            "RATE_LIMITS": {
                **app.config["RATE_LIMITS"],
                "join": "1/minute",
                "hold": "1/minute",
                "checkout": "1/minute",
                "per_ip": "1000/minute",
            },
        }
    )
    client = login(limited.test_client(), make_user())
    client.post(f"/api/events/{event.id}/queue")
    refused = client.post(f"/api/events/{event.id}/queue", headers=KO)
    assert refused.status_code == 429 and refused.json["error"] == "too_many_requests"
    assert refused.json["message"] == "요청이 너무 잦습니다. 잠시 기다린 뒤 다시 시도해 주세요."
    page = text(client.post(f"/events/{event.id}/join", headers=KO))
    assert "<h1>요청이 너무 많음</h1>" in page


# The switcher


def test_the_switcher_cookie_beats_accept_language(client, event):
    url = f"/events/{event.id}"
    response = client.get(f"/lang/en?next={url}", headers=KO)
    assert response.status_code == 302 and response.headers["Location"] == url
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("lang=en;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = text(client.get(url, headers=KO))
    assert html_lang(page) == "en" and "Log in to join the queue" in page
    assert client.get("/api/events/999999", headers=KO).json["message"] == "No such event."

    client.get(f"/lang/ko?next={url}", headers=EN)
    page = text(client.get(url, headers=EN))
    assert html_lang(page) == "ko" and "로그인하고 대기열 참여하기" in page


def test_the_switcher_links_name_each_language_in_itself(client, event):
    page = text(client.get(f"/events/{event.id}?x=1"))
    nav = re.search(r'<nav class="languages" aria-label="Language">(.*?)</nav>', page, re.S)
    assert nav, page
    assert '<span lang="en" aria-current="true">English</span>' in nav.group(1)
    assert (
        f'<a href="/lang/ko?next=/events/{event.id}?x%3D1" lang="ko" hreflang="ko">한국어</a>'
    ) in nav.group(1)
    korean = text(client.get(f"/events/{event.id}", headers=KO))
    assert '<nav class="languages" aria-label="언어">' in korean
    assert '<a href="/lang/en?next=/events/' in korean and '<span lang="ko" aria-current' in korean


def test_the_switcher_refuses_languages_we_do_not_have(client):
    for code in ("fr", "EN", "ko-KR", "xx"):
        response = client.get(f"/lang/{code}?next=/")
        assert response.status_code == 404, code
        assert "Set-Cookie" not in response.headers
        assert "No such language: choose English (en) or Korean (ko)." in text(response)
    korean = client.get("/lang/fr", headers=KO)
    assert "지원하지 않는 언어입니다." in text(korean)


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "\\\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\t/evil.example",
        "",
    ],
)
def test_the_switcher_never_leaves_the_site(client, target):
    response = client.get("/lang/ko", query_string={"next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert response.headers["Set-Cookie"].startswith("lang=ko;")


def test_the_switcher_keeps_a_same_site_path_and_its_query(client, event):
    target = f"/events/{event.id}/waiting?from=mail"
    response = client.get("/lang/ko", query_string={"next": target})
    assert response.headers["Location"] == target


# Formatting


def test_numbers_durations_and_times_follow_the_locale(app):
    moment = datetime(2030, 1, 5, 15, 4, 5)
    with app.test_request_context(headers=KO):
        assert [i18n.duration(s) for s in (45, 300, 4800, 7200)] == [
            "45초",
            "5분",
            "1시간 20분",
            "2시간",
        ]
        assert i18n.number(1_234_567) == "1,234,567" and i18n.number(12.5) == "12.5"
        assert i18n.when(moment) == "2030. 1. 5. 오후 3:04:05"
        assert i18n.when("2030-01-05T15:04:05Z", time="short") == "2030. 1. 5. 오후 3:04"
        assert i18n.admission_state("paused") == "일시 중지"
    with app.test_request_context(headers=EN):
        assert [i18n.duration(s) for s in (45, 300, 4800, 7200)] == [
            "45 sec",
            "5 min",
            "1 hr 20 min",
            "2 hr",
        ]
        assert i18n.when(moment) == "Jan 5, 2030, 3:04:05\u202fPM"
        assert i18n.admission_state("paused") == "paused"
    assert i18n.duration(59) == "59 sec"  # no request, no app: English


def test_countdown_js_takes_its_words_from_the_page():
    source = (ROOT / "app" / "static" / "countdown.js").read_text()
    assert 'getAttribute("data-expired")' in source
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("//"))
    literals = re.findall(r'"([^"\n]*)"', code)
    assert "[data-countdown]" in literals  # the parsing works
    words = [
        lit
        for lit in literals
        if re.search("[A-Za-z]", lit)
        and lit
        not in (
            "[data-countdown]",
            "data-countdown",
            "data-expired",
            "data-announce",
            "{time}",
            "[data-ended]",
            "data-ended",
        )  # fmt: skip
    ]
    assert words == [], "countdown.js writes words of its own into the page"


# The catalog


def source_messages() -> dict[str, str]:
    """Every translatable string in app/ (as `make messages` extracts them):
    msgid -> where it was found."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    found = {}
    for filename, lineno, message, _, _ in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        msgid = message if isinstance(message, str) else message[0]
        found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def test_every_string_in_the_sources_is_translated_into_korean():
    with CATALOG.open("rb") as f:
        catalog = read_po(f, locale="ko")
    found = source_messages()
    assert len(found) > 200  # the extraction itself works
    missing = {msgid: where for msgid, where in found.items() if catalog.get(msgid) is None}
    assert not missing, f"not in {CATALOG.name}: run `make messages` and translate {missing}"
    untranslated, fuzzy = [], []
    for message in catalog:
        if not message.id:
            continue
        strings = [message.string] if isinstance(message.string, str) else message.string
        if not all(strings):
            untranslated.append(message.id)
        if message.fuzzy:
            fuzzy.append(message.id)
    assert not untranslated, f"untranslated in {CATALOG.name}: {untranslated}"
    assert not fuzzy, f"fuzzy (check, then drop the flag) in {CATALOG.name}: {fuzzy}"
    stale = [
        m.id for m in catalog if m.id and (m.id if isinstance(m.id, str) else m.id[0]) not in found
    ]
    assert not stale, f"no longer in the sources: run `make messages` ({stale})"
    # The placeholders of each translation are the ones of its msgid.
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
    assert not problems, problems
