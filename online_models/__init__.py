"""Pure online learners the flow updates event by event (`learn_one` / `predict_one`). No I/O here."""
