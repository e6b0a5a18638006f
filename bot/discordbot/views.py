"""Buttons: 👍/👎 feedback on answers (persistent across restarts) and Prev/Next paging for /search."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord

from newsbot.bot.discordbot.render import NO_MENTIONS, search_page
from newsbot.index.hits import Hit

if TYPE_CHECKING:
    from newsbot.bot.discordbot.bot import NewsBot

log = logging.getLogger("newsbot.discord")


class FeedbackButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"newsbot:fb:(?P<vote>up|down):(?P<answer>[0-9a-z]+)",
):
    """One vote button; its custom id carries the vote and the answer id, so it works after a restart."""

    def __init__(self, vote: str, answer_id: str) -> None:
        self.vote = vote
        self.answer_id = answer_id
        super().__init__(
            discord.ui.Button(
                emoji="👍" if vote == "up" else "👎",
                style=discord.ButtonStyle.secondary,
                custom_id=f"newsbot:fb:{vote}:{answer_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> FeedbackButton:
        return cls(match["vote"], match["answer"])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: NewsBot = interaction.client  # type: ignore[assignment]
        vote = 1 if self.vote == "up" else -1
        await bot.run_engine(bot.engine.record_feedback, self.answer_id, str(interaction.user.id), vote)
        thanks = "Thanks — glad it helped." if vote > 0 else "Thanks — noted. We use this to improve answers."
        await interaction.response.send_message(thanks, ephemeral=True, allowed_mentions=NO_MENTIONS)


def feedback_view(answer_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(FeedbackButton("up", answer_id))
    view.add_item(FeedbackButton("down", answer_id))
    return view


class SearchPager(discord.ui.View):
    """Prev/Next over an already computed result list (5 per page)."""

    def __init__(self, query: str, hits: Sequence[Hit], *, per_page: int = 5, timeout: float = 900) -> None:
        super().__init__(timeout=timeout)
        self.query = query
        self.hits = list(hits)
        self.per_page = per_page
        self.page = 0
        self.message: discord.Message | discord.WebhookMessage | None = None
        self._sync_buttons()

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.hits) // self.per_page))

    def embed(self) -> discord.Embed:
        return search_page(self.query, self.hits, self.page, self.per_page)

    def _sync_buttons(self) -> None:
        self.prev_page.disabled = self.page <= 0
        self.next_page.disabled = self.page >= self.pages - 1

    async def _show(self, interaction: discord.Interaction) -> None:
        self._sync_buttons()
        await interaction.response.edit_message(embed=self.embed(), view=self)

    @discord.ui.button(label="◀ Prev", style=discord.ButtonStyle.secondary)
    async def prev_page(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        self.page = max(0, self.page - 1)
        await self._show(interaction)

    @discord.ui.button(label="Next ▶", style=discord.ButtonStyle.secondary)
    async def next_page(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        self.page = min(self.pages - 1, self.page + 1)
        await self._show(interaction)

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        if self.message is not None:
            try:
                await self.message.edit(view=self)
            except discord.HTTPException:
                pass
