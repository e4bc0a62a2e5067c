"""投诉台账 Complaint Desk core: schema, rules and workbook I/O.

Imports none of xlwings, watchdog, APScheduler or smtplib: every entry point (the add-in,
the CLI, the daemon, the scheduler) calls the same functions here.
"""

__version__ = "0.1.0"
