"""Automation: rules, conditions, actions, macros, SLAs, calendars and the job scheduler."""
