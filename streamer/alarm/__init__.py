"""alarm: probabilities -> levels with hysteresis, raised/cleared events, suppression."""
