"""The scan engine: planning, isolated checker runs, grading and the gate."""
