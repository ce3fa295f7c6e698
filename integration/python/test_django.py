"""Django ORM through pgcached (issue 17 item 5): same results as directly, and the cache is used.

Django is configured in-process (settings.configure) with a database alias through pgcached and
one directly to Postgres for each way Django's psycopg 3 backend sends queries: client-side
parameter binding (Django's default: the simple query protocol) and server-side binding
(OPTIONS server_side_binding: the extended protocol with $n parameters).

(a) A handful of ORM queries (filter, get, aggregate, annotate, select_related / prefetch_related
    joins, values_list, order_by + slicing, JSON keys, subqueries) give the same results through
    pgcached as directly, twice in a row (the second time from the cache).
(b) Reads inside transaction.atomic() blocks are answered from the cache, and an ORM write
    through pgcached (update(), save()) invalidates them. A hit is observed from the outside, as
    in test_orm_transactions.py: the row is changed directly in Postgres, behind the proxy (which
    cannot see that write; the default TTL is 60 s); a read through pgcached that still returns
    the old value was answered from the cache. Savepoints (nested atomic blocks) behave as
    directly.
(c) Django's default autocommit reads hit the cache too; ORM writes in autocommit invalidate.
(d) A connection whose Django TIME_ZONE differs (Django sends SET TIME ZONE on connect) sees
    timestamps rendered in its own zone, never a cached answer recorded for another zone.

Tables are (re)created through pgcached (Django's schema editor): its DDL flushes the cache, so
nothing cached by an earlier test survives into the next.
"""

import datetime
import os
from decimal import Decimal

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

import django
from django.apps import AppConfig
from django.conf import settings

from conftest import _dsn

UTC = datetime.timezone.utc


def _database(var, **extra):
    """A Django DATABASES entry for the libpq DSN in $var (placeholders when unset: the
    fixtures skip then, via conftest._dsn)."""
    params = conninfo_to_dict(os.environ.get(var) or "host=127.0.0.1 port=1 user=postgres dbname=app")
    db = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": params.get("host", "127.0.0.1"),
        "PORT": params.get("port", "5432"),
        "USER": params.get("user", "postgres"),
        "PASSWORD": params.get("password", ""),
        "NAME": params.get("dbname", "app"),
        "OPTIONS": {"connect_timeout": 10},
    }
    for k, v in extra.items():
        if k == "OPTIONS":
            db["OPTIONS"].update(v)
        else:
            db[k] = v
    return db


SERVER_BINDING = {"OPTIONS": {"server_side_binding": True}}
PARIS = {"TIME_ZONE": "Europe/Paris"}



class _TestApp(AppConfig):
    """This module as an installed Django app (its models need one: reverse relations such as
    Author.books are only set up for models of installed apps)."""

    name = __name__
    label = "pgcached_it"
    path = os.path.dirname(os.path.abspath(__file__))


if not settings.configured:
    settings.configure(
        DATABASES={
            # alias "<target>_<binding>"; Django requires a "default".
            "default": _database("PGCACHED_DSN"),
            "proxy_client": _database("PGCACHED_DSN"),
            "direct_client": _database("DIRECT_DSN"),
            "proxy_server": _database("PGCACHED_DSN", **SERVER_BINDING),
            "direct_server": _database("DIRECT_DSN", **SERVER_BINDING),
            "proxy_paris": _database("PGCACHED_DSN", **PARIS),
            "direct_paris": _database("DIRECT_DSN", **PARIS),
        },
        INSTALLED_APPS=[f"{__name__}._TestApp"],
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()

from django.db import connections, models, transaction  # noqa: E402  (needs settings)
from django.db.models import Avg, Count, Exists, F, Max, Min, OuterRef, Q, Sum, TextField  # noqa: E402
from django.db.models.functions import Cast, TruncDay  # noqa: E402


class Author(models.Model):
    name = models.CharField(max_length=100)
    country = models.CharField(max_length=2)

    class Meta:
        app_label = "pgcached_it"
        db_table = "dj_author"


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    pages = models.IntegerField()
    price = models.DecimalField(max_digits=8, decimal_places=2)
    published = models.DateTimeField()
    tags = models.JSONField(default=dict)

    class Meta:
        app_label = "pgcached_it"
        db_table = "dj_book"


@pytest.fixture(autouse=True)
def _through_pgcached():
    if _dsn("PGCACHED_DSN") == _dsn("DIRECT_DSN"):
        pytest.skip("INTEGRATION_PROXY=direct: there is no cache to observe")
    yield
    connections.close_all()


def _direct(sql, params=None):
    """Run one statement directly in Postgres, behind pgcached's back."""
    with psycopg.connect(_dsn("DIRECT_DSN"), autocommit=True) as c:
        c.execute(sql, params)


COUNTRIES = ["FR", "DE", "US", "FR", "JP", "BR"]
GENRES = ["sf", "crime", "poetry"]


@pytest.fixture(params=["client", "server"], ids=["client_binding", "server_binding"])
def library(request):
    """(alias through pgcached, alias direct) for one binding mode; dj_author (6 rows) and
    dj_book (60 rows) created and filled through pgcached by Django."""
    proxy, direct = f"proxy_{request.param}", f"direct_{request.param}"
    with connections[proxy].cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS dj_book, dj_author")
    with connections[proxy].schema_editor() as editor:
        editor.create_model(Author)
        editor.create_model(Book)
    Author.objects.using(proxy).bulk_create(
        Author(id=i + 1, name=f"Author {i + 1}", country=c) for i, c in enumerate(COUNTRIES)
    )
    Book.objects.using(proxy).bulk_create(
        Book(
            id=i,
            title=f"Book {i}",
            author_id=i % len(COUNTRIES) + 1,
            pages=(i * 37) % 700 + 50,
            price=Decimal(f"{(i * 13) % 50 + 5}.{i % 100:02d}"),
            published=datetime.datetime(2020, 1, 1, 22, 30, tzinfo=UTC) + datetime.timedelta(days=i * 17, hours=i),
            tags={"genre": GENRES[i % 3], "n": i, "even": i % 2 == 0},
        )
        for i in range(1, 61)
    )
    return proxy, direct


# ---------------------------------------------------------------- (a) same results


def _book(b):
    return (b.id, b.title, b.author_id, b.pages, b.price, b.published, b.tags)


QUERIES = {
    "filter": lambda db: list(
        Book.objects.using(db).filter(pages__gt=200, price__lt=30).order_by("id").values("id", "title", "pages", "price")
    ),
    "get": lambda db: _book(Book.objects.using(db).get(pk=7)),
    "get_by_unique_text": lambda db: _book(Book.objects.using(db).get(title="Book 42")),
    "aggregate": lambda db: Book.objects.using(db).aggregate(
        n=Count("id"), pages=Sum("pages"), avg=Avg("price"), first=Min("published"), last=Max("published")
    ),
    "annotate_group_by": lambda db: list(
        Author.objects.using(db)
        .annotate(n=Count("books"), total=Sum("books__pages"), dearest=Max("books__price"))
        .order_by("name")
        .values_list("name", "n", "total", "dearest")
    ),
    "select_related": lambda db: [
        (b.id, b.title, b.author.name, b.author.country)
        for b in Book.objects.using(db).select_related("author").filter(author__country="FR").order_by("-published")
    ],
    "prefetch_related": lambda db: [
        (a.name, sorted(b.title for b in a.books.all()))
        for a in Author.objects.using(db).prefetch_related("books").order_by("id")
    ],
    "values_list_slice": lambda db: list(
        Book.objects.using(db).order_by("-pages", "id").values_list("title", flat=True)[3:8]
    ),
    "order_by_first_n": lambda db: [_book(b) for b in Book.objects.using(db).order_by("price", "id")[:5]],
    "first_last": lambda db: (
        _book(Book.objects.using(db).order_by("published").first()),
        _book(Book.objects.using(db).order_by("published").last()),
    ),
    "json_key": lambda db: list(
        Book.objects.using(db).filter(tags__genre="sf", tags__even=True).order_by("id").values_list("id", "tags__n")
    ),
    "q_or_in_count": lambda db: Book.objects.using(db)
    .filter(Q(pages__lt=120) | Q(author__name__in=["Author 2", "Author 5"]))
    .count(),
    "exists": lambda db: (
        Book.objects.using(db).filter(title__icontains="book 1").exists(),
        Book.objects.using(db).filter(title__icontains="nothing").exists(),
    ),
    "date_lookup": lambda db: list(
        Book.objects.using(db).filter(published__year=2021, published__month__in=[3, 4, 5]).values_list("id", "published")
    ),
    "trunc_day": lambda db: list(
        Book.objects.using(db).filter(id__lte=10).annotate(day=TruncDay("published")).order_by("id").values_list("id", "day")
    ),
    "distinct": lambda db: list(
        Book.objects.using(db).order_by("author__country").values_list("author__country", flat=True).distinct()
    ),
    "subquery_exists": lambda db: list(
        Author.objects.using(db)
        .filter(Exists(Book.objects.filter(author=OuterRef("pk"), pages__gt=650)))
        .order_by("id")
        .values_list("id", flat=True)
    ),
    "f_expression": lambda db: list(
        Book.objects.using(db).filter(pages__gt=F("id") * 10).order_by("id").values_list("id", flat=True)
    ),
    "in_bulk": lambda db: {k: _book(v) for k, v in Book.objects.using(db).in_bulk([3, 5, 8, 99]).items()},
}


@pytest.mark.parametrize("query", QUERIES)
def test_django_queries_same_as_direct(library, query):
    """Each ORM query gives the same Python values through pgcached as directly, twice."""
    proxy, direct = library
    fn = QUERIES[query]
    want = fn(direct)
    assert want, "the query returned nothing: not a useful comparison"
    for attempt in ("first (miss)", "second (may be a hit)"):
        got = fn(proxy)
        assert got == want, f"{attempt} read through pgcached:\n{got!r}\ndirect:\n{want!r}"


# ---------------------------------------------------------------- (b) transaction.atomic()


def _in_atomic(db, fn):
    """fn(db) inside transaction.atomic(): asserts the read ran in a transaction block."""
    with transaction.atomic(using=db):
        got = fn(db)
        assert connections[db].in_atomic_block
        assert connections[db].connection.info.transaction_status == TransactionStatus.INTRANS
    return got


def _title(db, pk=1):
    return Book.objects.using(db).get(pk=pk).title


def _pages(db, pk=1):
    return Book.objects.using(db).values_list("pages", flat=True).get(pk=pk)


def _french(db):
    return [
        (b.id, b.title, b.author.name)
        for b in Book.objects.using(db).select_related("author").filter(author__country="FR", id__lte=12).order_by("id")
    ]


def _summary(db):
    return Book.objects.using(db).aggregate(n=Count("id"), pages=Sum("pages"))


def test_atomic_reads_are_cached_and_orm_writes_invalidate(library):
    """Reads in atomic blocks (get, a select_related join, an aggregate) are answered from the
    cache after the first; an update() / save() through pgcached in an atomic block reads its
    own writes and, once committed, invalidates: every read then equals the direct one."""
    proxy, direct = library
    reads = (_title, _french, _summary)
    want = {fn: _in_atomic(direct, fn) for fn in reads}
    for _ in range(3):  # several blocks: the first records the answers, the others hit
        for fn in reads:
            assert _in_atomic(proxy, fn) == want[fn]

    _direct("UPDATE dj_book SET title = 'changed behind', pages = pages + 1000 WHERE id = 1")
    assert _in_atomic(direct, _title) == "changed behind"
    assert _in_atomic(direct, _summary) != want[_summary]
    for fn in reads:
        assert _in_atomic(proxy, fn) == want[fn], f"{fn.__name__}: a read in an atomic block was not a hit"

    # An ORM write through pgcached, in an atomic block, on the cached table.
    with transaction.atomic(using=proxy):
        Book.objects.using(proxy).filter(pk=1).update(pages=F("pages") + 1)
        # The block wrote dj_book: its reads of dj_book come from Postgres (own write visible).
        assert _pages(proxy, 1) == _pages(direct, 1) + 1
        assert _title(proxy, 1) == "changed behind"
    for fn in reads:
        assert _in_atomic(proxy, fn) == _in_atomic(direct, fn), f"{fn.__name__} after an ORM update()"
    assert _in_atomic(proxy, _title) == "changed behind"

    # Cache again, change behind, then save(update_fields=…) through pgcached invalidates.
    for _ in range(2):
        want_title = _in_atomic(proxy, _title)
    _direct("UPDATE dj_book SET title = 'changed behind again' WHERE id = 1")
    assert _in_atomic(proxy, _title) == want_title, "a read in an atomic block was not a hit"
    with transaction.atomic(using=proxy):
        book = Book.objects.using(proxy).get(pk=1)
        book.pages = 4321
        book.save(update_fields=["pages"])
    assert _in_atomic(proxy, _title) == _in_atomic(direct, _title) == "changed behind again"
    assert _in_atomic(proxy, _pages) == _in_atomic(direct, _pages) == 4321
    for fn in reads:
        assert _in_atomic(proxy, fn) == _in_atomic(direct, fn)


class _Abort(Exception):
    pass


def _savepoint_story(db):
    """Nested atomic blocks (SAVEPOINT / ROLLBACK TO / RELEASE) with reads between writes."""
    seen = []
    with transaction.atomic(using=db):
        seen.append(("start", _pages(db, 2), _title(db, 3)))
        try:
            with transaction.atomic(using=db):
                Book.objects.using(db).filter(pk=2).update(pages=F("pages") + 5)
                seen.append(("in rolled back savepoint", _pages(db, 2)))
                raise _Abort
        except _Abort:
            pass
        seen.append(("after rollback to savepoint", _pages(db, 2), _title(db, 3)))
        with transaction.atomic(using=db):
            Book.objects.using(db).filter(pk=3).update(title="renamed in savepoint")
            seen.append(("in released savepoint", _title(db, 3)))
        seen.append(("after release", _title(db, 3), _pages(db, 2)))
        transaction.set_rollback(True, using=db)  # leave the table as it was
    seen.append(("after rollback", _pages(db, 2), _title(db, 3)))
    return seen


def test_atomic_savepoints_same_as_direct(library):
    """Reads around SAVEPOINT / ROLLBACK TO SAVEPOINT / RELEASE see what they see directly,
    also when the outer values were cached before the block."""
    proxy, direct = library
    for _ in range(2):  # cache pages of 2 and title of 3
        _in_atomic(proxy, lambda db: (_pages(db, 2), _title(db, 3)))
    want = _savepoint_story(direct)
    assert _savepoint_story(proxy) == want
    assert _savepoint_story(proxy) == want

    # The same, committed this time, through pgcached: the next reads show it.
    with transaction.atomic(using=proxy):
        try:
            with transaction.atomic(using=proxy):
                Book.objects.using(proxy).filter(pk=2).update(pages=1)
                raise _Abort
        except _Abort:
            pass
        with transaction.atomic(using=proxy):
            Book.objects.using(proxy).filter(pk=3).update(title="renamed and committed")
    assert _pages(proxy, 2) == _pages(direct, 2) != 1
    assert _title(proxy, 3) == _title(direct, 3) == "renamed and committed"


# ---------------------------------------------------------------- (c) autocommit


def _autocommit(db, fn):
    """fn(db) in Django's default autocommit mode: asserts no transaction block stayed open."""
    got = fn(db)
    assert connections[db].get_autocommit() and not connections[db].in_atomic_block
    assert connections[db].connection.info.transaction_status == TransactionStatus.IDLE
    return got


def _author_count(db):
    return Author.objects.using(db).count()


def _book_count(db):
    return Book.objects.using(db).count()


def test_autocommit_reads_are_cached_and_orm_writes_invalidate(library):
    """Django's default mode (autocommit, no atomic block): reads hit the cache; update(),
    create() and delete() (with Django's cascade) through pgcached invalidate."""
    proxy, direct = library
    reads = (_title, _french, _summary, _author_count, _book_count)
    want = {fn: _autocommit(direct, fn) for fn in reads}
    for _ in range(3):
        for fn in reads:
            assert _autocommit(proxy, fn) == want[fn]

    _direct("UPDATE dj_book SET title = 'changed behind' WHERE id = 1")
    _direct("INSERT INTO dj_author (id, name, country) VALUES (100, 'Behind', 'XX')")
    assert _autocommit(direct, _title) == "changed behind"
    for fn in reads:
        assert _autocommit(proxy, fn) == want[fn], f"{fn.__name__}: an autocommit read was not a hit"

    assert Book.objects.using(proxy).filter(pk=1).update(pages=777) == 1
    assert _autocommit(proxy, _title) == _autocommit(direct, _title) == "changed behind"
    assert _autocommit(proxy, _summary) == _autocommit(direct, _summary)

    Author.objects.using(proxy).create(id=101, name="Through", country="YY")
    assert _autocommit(proxy, _author_count) == _autocommit(direct, _author_count) == len(COUNTRIES) + 2

    # Author 1 has books: Django deletes them first (its own cascade), then the author.
    Author.objects.using(proxy).filter(pk=1).delete()
    for fn in reads:
        assert _autocommit(proxy, fn) == _autocommit(direct, fn), f"{fn.__name__} after delete()"
    assert _autocommit(proxy, _book_count) == 60 - 10


# ---------------------------------------------------------------- (d) session time zone


def _rendered(db):
    """Timestamps as Postgres renders them in the session's TimeZone, and a day truncation
    done in the connection's zone (Django passes it as a parameter)."""
    qs = Book.objects.using(db).filter(id__lte=4).order_by("id")
    return list(qs.annotate(text=Cast("published", TextField()), day=TruncDay("published")).values_list("id", "text", "day"))


def test_time_zone_of_the_connection_is_respected(library):
    """A Django connection with TIME_ZONE Europe/Paris (SET TIME ZONE on connect) and one in UTC,
    interleaved through the same transaction pool: each gets what it gets directly."""
    proxy, direct = library
    want_utc, want_paris = _rendered(direct), _rendered("direct_paris")
    assert want_utc != want_paris
    for _ in range(3):
        assert _rendered(proxy) == want_utc
        assert _rendered("proxy_paris") == want_paris
        with transaction.atomic(using="proxy_paris"):
            assert _rendered("proxy_paris") == want_paris
        with transaction.atomic(using=proxy):
            assert _rendered(proxy) == want_utc
