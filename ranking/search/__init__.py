"""Search in words: "calm acoustic songs for studying", "upbeat 90s rock", an artist, a title,
"기분 좋은 노래 틀어줘".

| module | what |
|---|---|
| `lexicon.py` | the words understood (English and Korean): moods, activities, times, feature words, genres, eras |
| `understand.py` | query → concepts, lexical words, ignored words (`understand`) |
| `index.py` | `SearchIndex`, per catalog version: titles, artists, genres, words, years, sentence embeddings |
| `embedding.py` | WordLlama loaded from its wheel, downloads disabled |
| `rank.py` | the query's terms, filters, the listener's blend, reasons (`search`) |

Pure but for `embedding.py`, which reads the model's files from the installed package.
"""

from ranking.search.index import SearchIndex, normalise
from ranking.search.rank import Listener, SearchHit, SearchResult, search
from ranking.search.understand import Concept, ParsedQuery, understand

__all__ = ["Concept", "Listener", "ParsedQuery", "SearchHit", "SearchIndex", "SearchResult", "normalise",
           "search", "understand"]
