"""Four-eyes on money: an action that moves money is asked for by one person and carried out
only when someone else (above a project's threshold, two others) approves it."""
