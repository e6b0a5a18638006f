"""One cog per feature area: asking (mentions, DMs, threads, /ask), lookups (/search, /source, /latest,
/stats), digests (/digest), follows and scheduled digests (/follow, /unfollow, /follows,
/digest-schedule), administration (/ingest, /feeds, /reindex), /help, and per-server settings
(/config)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from newsbot.bot.discordbot.bot import NewsBot


async def setup_cogs(bot: NewsBot) -> None:
    from newsbot.bot.discordbot.cogs.admin import AdminCog
    from newsbot.bot.discordbot.cogs.ask import AskCog
    from newsbot.bot.discordbot.cogs.digest import DigestCog
    from newsbot.bot.discordbot.cogs.follow import FollowCog
    from newsbot.bot.discordbot.cogs.help import HelpCog
    from newsbot.bot.discordbot.cogs.lookup import LookupCog
    from newsbot.bot.discordbot.cogs.settings import SettingsCog
    from newsbot.bot.discordbot.views import FeedbackButton

    bot.add_dynamic_items(FeedbackButton)
    await bot.add_cog(AskCog(bot))
    await bot.add_cog(LookupCog(bot))
    await bot.add_cog(AdminCog(bot))
    await bot.add_cog(HelpCog(bot))
    await bot.add_cog(SettingsCog(bot))
    await bot.add_cog(DigestCog(bot))
    await bot.add_cog(FollowCog(bot))
