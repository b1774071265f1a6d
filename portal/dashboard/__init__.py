"""The live distribution dashboard: one project's money, vendors and pipeline on a big screen."""
