"""A dossier's journey: filing, processing steps, attachment signatures, delivery of the result by post, the
8-working-hour rule, and the quarterly report counted from them."""
