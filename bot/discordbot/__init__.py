"""newsbot on Discord: a thin discord.py layer over `bot.engine.Engine` (start it with `newsbot serve`)."""
