"""What the one-stop software reads back: the change feed, by cursor or pushed as signed webhooks."""
