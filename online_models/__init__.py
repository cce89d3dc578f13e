"""Pure online learning for Encore: feedback signal, taste profiles, scoring math. No I/O here."""
