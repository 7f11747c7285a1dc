"""Stage runners: run tracking, harvest, publish, and the chained pipeline."""
