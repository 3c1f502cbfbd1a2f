"""The 12 universal part-of-speech tags of Petrov, Das and McDonald (2012), shared by the POS tasks.

English training data (``brown_pos``) and the multilingual POS targets use this label set, so a head
trained on one is evaluated on the other without a mapping.
"""

from __future__ import annotations

# "A Universal Part-of-Speech Tagset" (LREC 2012), in the paper's order.
UPOS12: tuple[str, ...] = ("VERB", "NOUN", "PRON", "ADJ", "ADV", "ADP", "CONJ", "DET", "NUM", "PRT", "X", ".")
