"""A small async bookshop service with a real N+1, for `doctor trace`.

The "GET /authors" handler loads the authors, then touches each author's lazy `books`
relationship in a loop: one extra SELECT per author (AUTHORS of them), all siblings under the
request span. `--fixed` loads the same data with `selectinload(Author.books)`: two queries.

The app only uses the OpenTelemetry *API* (it opens a span per request and one for seeding), the
way a library or a service configured by its deployment would. Run it under the doctor, which
installs an SDK provider and instruments SQLAlchemy:

    doctor trace --instrument -- python sample_projects/n_plus_one_app/app.py          # OSD601 x12
    doctor trace --instrument -- python sample_projects/n_plus_one_app/app.py --fixed  # no findings

The database is a temporary SQLite file (aiosqlite) unless --database-url (or DATABASE_URL) names
another, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile

from opentelemetry import trace
from sqlalchemy import ForeignKey, String, insert, select
from sqlalchemy.ext.asyncio import AsyncAttrs, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

AUTHORS = 12
BOOKS_PER_AUTHOR = 3

tracer = trace.get_tracer("bookshop")


class Base(AsyncAttrs, DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "n1_authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    books: Mapped[list["Book"]] = relationship(back_populates="author")


class Book(Base):
    __tablename__ = "n1_books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int] = mapped_column(ForeignKey("n1_authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")


async def seed(engine) -> None:
    """Create and fill the tables: two bulk INSERTs (executemany), inside a "seed" job span."""
    with tracer.start_as_current_span("seed"):
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.run_sync(Base.metadata.create_all)
            await conn.execute(insert(Author), [{"id": a + 1, "name": f"author {a}"} for a in range(AUTHORS)])
            books = [
                {"title": f"book {a}.{b}", "author_id": a + 1} for a in range(AUTHORS) for b in range(BOOKS_PER_AUTHOR)
            ]
            await conn.execute(insert(Book), books)


async def list_authors(session_factory, *, fixed: bool) -> list[tuple[str, int]]:
    """The request handler: every author with the number of their books."""
    with tracer.start_as_current_span("GET /authors", kind=trace.SpanKind.SERVER):
        async with session_factory() as session:
            query = select(Author).order_by(Author.id)
            if fixed:
                query = query.options(selectinload(Author.books))
                authors = (await session.scalars(query)).all()
                return [(author.name, len(author.books)) for author in authors]
            authors = (await session.scalars(query)).all()
            rows = []
            for author in authors:
                books = await author.awaitable_attrs.books  # lazy load: one SELECT per author
                rows.append((author.name, len(books)))
            return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixed", action="store_true", help="load books with selectinload (no N+1)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bookshop-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bookshop.db"
        engine = create_async_engine(url)
        try:
            await seed(engine)
            rows = await list_authors(async_sessionmaker(engine, expire_on_commit=False), fixed=args.fixed)
        finally:
            await engine.dispose()
    for name, count in rows:
        print(f"{name}: {count} books")


if __name__ == "__main__":
    asyncio.run(main())
