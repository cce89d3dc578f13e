"""The words search understands: moods, activities, times of day, audio-feature words, genre
synonyms, eras and the words that carry no meaning, in English and in Korean.

Each entry maps a phrase (lower-cased, words separated by one space) to a `Concept` kind and value:

| kind | value | becomes |
|---|---|---|
| `mood` | a `ranking.moods.MOODS` name | that mood's audio target |
| `activity` | a `ranking.moods.ACTIVITIES` name | that activity's audio target |
| `time` | a `ranking.moods.TIMES_OF_DAY` name | that time's (gentler) target |
| `feature` | a `FEATURE_WORDS` key | a one- or two-feature target ("acoustic": acousticness high) |
| `genre` | a genre name | tracks of that genre (when the catalog has it) |
| `era` | `"1990-1999"`, `"oldies"`, `"recent"` | release years |

Korean phrases are matched inside runs of Hangul without their spaces (particles and endings
stick to words: "운동할때", "비오는날"); `KOREAN_STOPWORDS` are the request words around them
("노래 틀어줘": "play a song").
"""

from __future__ import annotations

from collections.abc import Mapping

from ranking.moods import ACTIVITIES, ALIASES, MOODS, TIMES_OF_DAY


def _bpm(bpm: float) -> float:
    return bpm / 250.0


def _db(db: float) -> float:
    return (db + 60.0) / 60.0


FEATURE_WORDS: dict[str, Mapping[str, tuple[float, float]]] = {
    "acoustic": {"acousticness": (0.75, 1.0)},
    "electronic": {"acousticness": (0.03, 0.8)},
    "instrumental": {"instrumentalness": (0.75, 1.0), "speechiness": (0.04, 0.3)},
    "vocal": {"instrumentalness": (0.0, 0.6)},
    "fast": {"tempo": (_bpm(150), 1.0), "energy": (0.75, 0.3)},
    "slow": {"tempo": (_bpm(80), 1.0), "energy": (0.35, 0.4)},
    "loud": {"loudness": (_db(-4), 1.0), "energy": (0.85, 0.4)},
    "quiet": {"loudness": (_db(-16), 1.0), "energy": (0.25, 0.6)},
    "danceable": {"danceability": (0.82, 1.0)},
    "upbeat": {"valence": (0.8, 1.0), "energy": (0.75, 0.6)},
    "dark": {"valence": (0.15, 1.0)},
    "high_energy": {"energy": (0.9, 1.0)},
    "low_energy": {"energy": (0.2, 1.0)},
    "live": {"liveness": (0.75, 1.0)},
    "wordy": {"speechiness": (0.35, 1.0)},
}
"""Audio-feature words as (target value, weight) per feature, in the scaled space of
`Track.feature_vector()` (tempo = BPM / 250, loudness = (dB + 60) / 60)."""

Entry = tuple[str, str]
"""(kind, value)."""


def _entries() -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for name in MOODS:
        out[name] = ("mood", name)
    for name in ACTIVITIES:
        out[name.replace("_", " ")] = ("activity", name)
    for name in TIMES_OF_DAY:
        out[name] = ("time", name)
    for word, name in ALIASES.items():
        kind = "mood" if name in MOODS else "activity"
        out.setdefault(word.replace("_", " "), (kind, name))
    more: dict[str, Entry] = {
        # moods
        "sad": ("mood", "melancholic"), "sadness": ("mood", "melancholic"), "rainy": ("mood", "melancholic"),
        "rain": ("mood", "melancholic"), "gloomy": ("mood", "melancholic"), "lonely": ("mood", "melancholic"),
        "heartbroken": ("mood", "melancholic"), "heartbreak": ("mood", "melancholic"),
        "breakup": ("mood", "melancholic"), "break up": ("mood", "melancholic"),
        "crying": ("mood", "melancholic"), "cry": ("mood", "melancholic"), "depressing": ("mood", "melancholic"),
        "emotional": ("mood", "melancholic"), "nostalgic": ("mood", "melancholic"),
        "happy": ("mood", "happy"), "feel good": ("mood", "happy"), "feelgood": ("mood", "happy"),
        "good mood": ("mood", "happy"), "good vibes": ("mood", "happy"), "sunny": ("mood", "happy"),
        "fun": ("mood", "happy"), "joy": ("mood", "happy"), "summer": ("mood", "happy"),
        "calm": ("mood", "chill"), "calming": ("mood", "chill"), "peaceful": ("mood", "chill"),
        "soothing": ("mood", "chill"), "serene": ("mood", "chill"), "gentle": ("mood", "chill"),
        "laid back": ("mood", "chill"), "laidback": ("mood", "chill"), "lofi": ("mood", "chill"),
        "lo fi": ("mood", "chill"), "chillout": ("mood", "chill"), "chill out": ("mood", "chill"),
        "intense": ("mood", "energetic"), "powerful": ("mood", "energetic"), "banger": ("mood", "energetic"),
        "bangers": ("mood", "energetic"), "energizing": ("mood", "energetic"), "adrenaline": ("mood", "energetic"),
        "club": ("mood", "party"), "dancing": ("mood", "party"), "dance floor": ("mood", "party"),
        "celebration": ("mood", "party"), "romance": ("mood", "romantic"), "love songs": ("mood", "romantic"),
        "date night": ("mood", "romantic"), "sexy": ("mood", "romantic"),
        "deep work": ("mood", "focused"), "concentrate": ("mood", "focused"), "coding": ("mood", "focused"),
        "programming": ("mood", "focused"),
        "training": ("mood", "workout"), "lifting": ("mood", "workout"), "weightlifting": ("mood", "workout"),
        "cardio": ("mood", "workout"),
        # activities
        "homework": ("activity", "studying"), "exam": ("activity", "studying"), "exams": ("activity", "studying"),
        "jog": ("activity", "running"), "road trip": ("activity", "commuting"), "drive": ("activity", "commuting"),
        "bus": ("activity", "commuting"), "train ride": ("activity", "commuting"),
        "falling asleep": ("activity", "sleeping"), "asleep": ("activity", "sleeping"),
        "lullaby": ("activity", "sleeping"), "nap": ("activity", "sleeping"),
        "kitchen": ("activity", "cooking"), "unwinding": ("activity", "relaxing"), "rest": ("activity", "relaxing"),
        "spa": ("activity", "relaxing"),
        # times of day
        "late night": ("time", "night"), "tonight": ("time", "night"), "midnight": ("time", "night"),
        "nighttime": ("time", "night"), "wake up": ("time", "morning"), "sunday morning": ("time", "morning"),
        "sunset": ("time", "evening"),
        # audio-feature words
        "acoustic": ("feature", "acoustic"), "unplugged": ("feature", "acoustic"),
        "electronic": ("feature", "electronic"), "synth": ("feature", "electronic"),
        "instrumental": ("feature", "instrumental"), "instrumentals": ("feature", "instrumental"),
        "no vocals": ("feature", "instrumental"), "without lyrics": ("feature", "instrumental"),
        "no lyrics": ("feature", "instrumental"), "vocal": ("feature", "vocal"), "vocals": ("feature", "vocal"),
        "fast": ("feature", "fast"), "uptempo": ("feature", "fast"), "up tempo": ("feature", "fast"),
        "slow": ("feature", "slow"), "downtempo": ("feature", "slow"), "slower": ("feature", "slow"),
        "loud": ("feature", "loud"), "heavy": ("feature", "loud"), "quiet": ("feature", "quiet"),
        "soft": ("feature", "quiet"), "danceable": ("feature", "danceable"), "groovy": ("feature", "danceable"),
        "groove": ("feature", "danceable"), "upbeat": ("feature", "upbeat"), "dark": ("feature", "dark"),
        "moody": ("feature", "dark"), "high energy": ("feature", "high_energy"),
        "low energy": ("feature", "low_energy"), "live": ("feature", "live"), "concert": ("feature", "live"),
        "spoken word": ("feature", "wordy"),
        # genre synonyms (only used when the catalog has the genre)
        "hip-hop": ("genre", "hip hop"), "hiphop": ("genre", "hip hop"), "rnb": ("genre", "r&b"),
        "r and b": ("genre", "r&b"), "r & b": ("genre", "r&b"), "rhythm and blues": ("genre", "r&b"),
        "electronic dance music": ("genre", "edm"), "dance music": ("genre", "edm"),
        "house": ("genre", "electro house"), "reggaeton": ("genre", "reggaeton"),
        "metal": ("genre", "hard rock"), "soul": ("genre", "neo soul"), "kpop": ("genre", "k-pop"),
        # eras
        "oldies": ("era", "oldies"), "old school": ("era", "oldies"), "retro": ("era", "oldies"),
        "new": ("era", "recent"), "newest": ("era", "recent"), "latest": ("era", "recent"),
        "recent": ("era", "recent"), "fresh": ("era", "recent"), "nineties": ("era", "1990-1999"),
        "eighties": ("era", "1980-1989"), "seventies": ("era", "1970-1979"), "sixties": ("era", "1960-1969"),
        "fifties": ("era", "1950-1959"),
    }
    out.update(more)
    return out


ENGLISH: dict[str, Entry] = _entries()
"""English phrase → (kind, value)."""

KOREAN: dict[str, Entry] = {
    # moods
    "기분 좋은": ("mood", "happy"), "기분좋은": ("mood", "happy"), "기분 좋아지는": ("mood", "happy"),
    "행복한": ("mood", "happy"), "즐거운": ("mood", "happy"), "밝은": ("mood", "happy"),
    "경쾌한": ("mood", "happy"), "상큼한": ("mood", "happy"),
    "신나는": ("mood", "energetic"), "신난": ("mood", "energetic"), "에너지": ("mood", "energetic"),
    "힘나는": ("mood", "energetic"), "강렬한": ("mood", "energetic"),
    "잔잔한": ("mood", "chill"), "차분한": ("mood", "chill"), "부드러운": ("mood", "chill"),
    "편안한": ("activity", "relaxing"), "편한": ("activity", "relaxing"), "힐링": ("activity", "relaxing"),
    "휴식": ("activity", "relaxing"), "쉴 때": ("activity", "relaxing"),
    "슬픈": ("mood", "melancholic"), "우울한": ("mood", "melancholic"), "우울할 때": ("mood", "melancholic"),
    "감성": ("mood", "melancholic"), "감성적인": ("mood", "melancholic"), "이별": ("mood", "melancholic"),
    "비 오는": ("mood", "melancholic"), "비오는": ("mood", "melancholic"), "쓸쓸한": ("mood", "melancholic"),
    "파티": ("mood", "party"), "클럽": ("mood", "party"), "춤추기 좋은": ("mood", "party"),
    "사랑": ("mood", "romantic"), "로맨틱한": ("mood", "romantic"), "달달한": ("mood", "romantic"),
    "집중": ("mood", "focused"), "집중할 때": ("mood", "focused"),
    "운동": ("mood", "workout"), "헬스": ("mood", "workout"), "운동할 때": ("mood", "workout"),
    # activities
    "공부": ("activity", "studying"), "공부할 때": ("activity", "studying"), "독서": ("activity", "studying"),
    "달리기": ("activity", "running"), "러닝": ("activity", "running"), "조깅": ("activity", "running"),
    "드라이브": ("activity", "commuting"), "출근길": ("activity", "commuting"), "퇴근길": ("activity", "commuting"),
    "출퇴근": ("activity", "commuting"),
    "잠": ("activity", "sleeping"), "잘 때": ("activity", "sleeping"), "자기 전": ("activity", "sleeping"),
    "수면": ("activity", "sleeping"), "요리": ("activity", "cooking"),
    # times
    "밤": ("time", "night"), "새벽": ("time", "night"), "아침": ("time", "morning"), "저녁": ("time", "evening"),
    # features
    "어쿠스틱": ("feature", "acoustic"), "조용한": ("feature", "quiet"), "빠른": ("feature", "fast"),
    "느린": ("feature", "slow"), "시끄러운": ("feature", "loud"), "연주곡": ("feature", "instrumental"),
    # genres
    "록": ("genre", "rock"), "락": ("genre", "rock"), "팝": ("genre", "pop"), "힙합": ("genre", "hip hop"),
    "랩": ("genre", "rap"), "일렉": ("genre", "edm"), "이디엠": ("genre", "edm"), "라틴": ("genre", "latin"),
    "알앤비": ("genre", "r&b"), "레게톤": ("genre", "reggaeton"), "트랩": ("genre", "trap"),
    "댄스": ("genre", "dance pop"), "케이팝": ("genre", "k-pop"),
    # eras
    "옛날": ("era", "oldies"), "추억의": ("era", "oldies"), "최신": ("era", "recent"), "요즘": ("era", "recent"),
}
"""Korean phrase (as written, with spaces) → (kind, value); matched without the spaces."""

STOPWORDS: frozenset[str] = frozenset(["a", "an", "the", "some", "any", "of", "for", "to", "in", "on", "at", "with", "and", "or", "but", "by", "from", "into", "like", "about", "as", "that", "this", "these", "those", "is", "are", "be", "me", "my", "i", "im", "i'm", "we", "us", "you", "your", "it", "its", "our", "please", "pls", "want", "wanna", "need", "give", "get", "find", "show", "put", "play", "playing", "listen", "listening", "hear", "songs", "song", "music", "tracks", "track", "tune", "tunes", "playlist", "mix", "list", "stuff", "something", "anything", "things", "thing", "kind", "sort", "type", "vibe", "vibes", "mood", "feel", "feeling", "feels", "while", "when", "during", "good", "great", "best", "top", "nice", "really", "very", "more", "most", "just"])
"""English words that carry no search meaning on their own."""

KOREAN_STOPWORDS: tuple[str, ...] = (
    "노래", "음악", "곡", "플레이리스트", "틀어줘", "틀어 줘", "틀어주세요", "들려줘", "들려 줘", "들려주세요",
    "추천해줘", "추천해 줘", "추천해주세요", "추천", "해줘", "해 줘", "주세요", "좀", "같은", "듣기 좋은",
    "듣기좋은", "좋은", "할 때", "할때", "때", "날", "하는", "에", "을", "를", "의", "로", "으로", "이", "가",
    "은", "는", "도", "한", "들", "요",
)
"""Korean request words, endings and particles left around the meaningful words."""

CONCEPT_WORDS: dict[str, Entry] = {
    **{name: ("mood", name) for name in MOODS},
    **{name.replace("_", " "): ("activity", name) for name in ACTIVITIES},
    "sad": ("mood", "melancholic"), "calm": ("mood", "chill"), "exercise": ("mood", "workout"),
    "study": ("activity", "studying"), "sleep": ("activity", "sleeping"), "dance": ("mood", "party"),
    "love": ("mood", "romantic"), "relax": ("activity", "relaxing"), "drive": ("activity", "commuting"),
    "acoustic": ("feature", "acoustic"), "instrumental": ("feature", "instrumental"),
    "fast": ("feature", "fast"), "slow": ("feature", "slow"), "loud": ("feature", "loud"),
    "quiet": ("feature", "quiet"), "night": ("time", "night"), "morning": ("time", "morning"),
}
"""The concepts an unknown English word is compared with (by sentence embedding) when it is in no
table: "jogging" is close to "running"."""
