"""``xstilts fanout``: the pipeline over a Ray cluster (:mod:`.coordinator`), a stage per node (:mod:`.worker`),
DVC's graph read through its own API (:mod:`.graph`), and what the terminal shows (:mod:`.view`)."""
