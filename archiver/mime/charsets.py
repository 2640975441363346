"""Charset policy: bytes of unknown or mislabelled encoding to text, the way Chinese mail needs.

Mail from Chinese senders is routinely mislabelled: "gb2312" bodies holding GBK or GB18030
characters (镕, 喆, 堃), "big5" holding HKSCS characters, GBK bytes labelled iso-8859-1,
UTF-8 labelled gb2312, and raw 8-bit bytes in headers. The rules:

* labels are normalised to the superset codec that real senders mean (gb2312/gbk/cp936 -> gb18030,
  big5/cp950 -> big5hkscs, ks_c_5601-1987/euc-kr -> cp949, iso-8859-1/us-ascii -> cp1252);
* the declared charset is tried strictly first; when it fails, is unknown, or is a single-byte Latin
  label over bytes that are really UTF-8 or CJK, the candidates are utf-8 (strict), then gb18030
  versus big5hkscs scored by how many decoded characters are common Chinese characters, then
  cp949 (Korean), cp932 and euc_jp (Japanese) scored the same way by common Hangul and kana, but
  only when they read markedly better than the Chinese codecs (Chinese mail is the common case,
  and EUC-KR bytes make valid GB2312 and vice versa), then charset-normalizer, and as a last
  resort the declared charset with replacement characters;
* every relabelling is reported as a human-readable warning.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from functools import lru_cache

__all__ = [
    "COMMON_CJK",
    "COMMON_HANGUL",
    "COMMON_JAPANESE",
    "cjk_score",
    "decode_bytes",
    "decode_header_value",
    "decode_header_value_with_warnings",
    "language_score",
    "normalize_charset",
]

# The most frequent Simplified characters (by corpus frequency, plus mail vocabulary) and the
# Traditional forms of those that differ. Mis-decoded CJK (Big5 read as GB and vice versa, Latin
# or UTF-8 read as GB) produces mostly rare characters, which is what the score below detects.
_COMMON_SIMPLIFIED = (
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于"
    "着下自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还"
    "进好小部其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情"
    "明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或"
    "新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员"
    "解水名真论处走义各入几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太"
    "量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社便空决治展马科司五基"
    "眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边死张该交"
    "规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联持组每济"
    "车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调"
    "深商算质团集百需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越"
    "器容照须九增研写称企八功吗包片史委乎查轻易早曾除农找装广显吧阿李标谈吃图念六引历"
    "首医局突专费号尽另周较注语仅考落青随选列武红响虽推势参希古众构房半节土投某案黑维"
    "革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供效续施留讲型料终答紧"
    "黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止细愿千值"
    "仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普怕弹校苦创假久错承印"
    "晚兰试股拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财"
    "环排福纳欢雷警获模充负云停木游龙树疑层冷邮址附您谢码账户登录册订票优惠免链昨"
)
_COMMON_TRADITIONAL_ONLY = (
    "並乾亞來個們備傳傷僅價優兒內兩冊別則剛創劃動務勞勢區卻參員問單嗎嚴國圍圖團報場夠"
    "學實寫將專對導層屬師帶幾廣張強彈後從愛態應戰戶採擊據敵數斷於時書會東條業極構樂標"
    "樣樹機權歡歷殺氣決沒況準滿濟為無熱營爭爾狀獨獲現環產當發盡眾確碼種稱節紀約紅納級"
    "細終組結絕給統經維網緊線總織繼續羅義習聯聲職聽腦臉臺與興舉華萬著藥蘇蘭處號術衛衞"
    "裝裡覆見規視親覺觀訂計記設許訴試話該認語說説誰調談請論講謝證識議護變讓負財責費資"
    "質賬車軍較輕轉辦農這連進運過達遠適選還邊郵醫錄錢錯鏈長門開間關陳陸陽隊際隨險雖雙"
    "離難雲電響項須預領頭題願類顯風飛馬驗驚體鬥麼黃點黨龍"
)
_COMMON_PUNCTUATION = "，。、；：？！“”‘’（）《》【】…—·　「」『』"
COMMON_CJK: frozenset[str] = frozenset(
    _COMMON_SIMPLIFIED + _COMMON_TRADITIONAL_ONLY + _COMMON_PUNCTUATION
)

# Hangul syllables common in running text, mail and advertising vocabulary and surnames (some 800
# of the 2,350 in KS X 1001; they make up about 98% of ordinary Korean text). Chinese GB bytes read
# as EUC-KR give Hanja (not counted) or syllables spread over all of KS X 1001, many of them rare.
COMMON_HANGUL: frozenset[str] = frozenset(
    "이다는에의하고을가지기로한리사서도자나를대어시아수정인일장해보전제주스적상부구국소게과"
    "우여요라면들만성동니원경비문물안화내공오학거연실방생중위할되반무신그미야었저개말마조모"
    "발관분세것진치현간결통선행회계산식명트있드속용양단당래까데히작금받운았했던려없교업심음"
    "람날차매월년습합입됩께님립감객확메광할벤품배송결카번밀알림답변참석청첨파달항예약완처침"
    "특최혜택바늘루쿠폰증립포접등록외직새뉴레터독거클릭링담팀표협검토승재획젝황출영케팅홍초"
    "축혼녕갑셨좋김박강윤임권류손백허남곽엄채천함염추설길왕옥육맹탁은편봉복태목형피두빈온범"
    "좌팽갈견또및잘못왜뭐너희러든각몇떤엇누언디얼같크많높낮짧빠르느쉽렵나쁘옛젊더때살알려줄"
    "와워웨위윈유으응의잠저절점제져졌줘중즈즉지직진질짐집징짜째쩌쪽찾책처천철첫체쳐총추춘충"
    "취측치친칠칭커컴켜코콘콜쿄크큰키타탄탈탐탑태택터테텔템토톤톱통퇴투툴튜트특튼틀티팀팅파"
    "판팔패팩퍼페펜편평폐포폭폰표푸풀품풍프플피픈필핑하학한할함합항해핵했행향허헌험헤현혈협"
    "형혜호혹혼홀홈홍화확환활황회획횟효후훈훨휴흐흑흔흘흥희흰히힘가각간갈감갑값강같개객갱거"
    "건걸검겁게겨격겪견결겸경계고곡곤골곳공과관광괜괴교구국군굳굴궁권귀규균그극근글금급긍기"
    "긴길김깊까깨꺼께꼭꽃꾸꿈끄끈끊끌끔끝끼낌나낙난날남납낫낭낮내냈냉냐너널넘넣네넷녀년념녕"
    "노녹논놀농높놓뇌누눈뉴느는늘능늦니닌님다닥단닫달닭담답당닿대댁더덕던덜데델도독돈돌동돼"
    "되된될됩두둔둘둥뒤드득든듣들듯등디딩따딱딸땅때떠떡떤떨떻또똑뛰뜨뜻띄라락란랄람랍랑래랜"
    "램랫략량러럭런럴럼럽렀렇레렉렌려력련렬렵령례로록론롤롭롯료루룩룹룻류륙률르른를름릇릎리"
    "릭린릴림립링마막만많말맑맛망맞맡매맥맨맵맺머먹먼멀멈멋멍메멘며면멸명몇모목몰몸못몽묘무"
    "묵문묻물뭐뭔므미민믿밀밑바박밖반받발밝밟밤밥방배백뱀버번벌범법벗베벤벨벼벽변별병보복볶"
    "본볼봄봇봉부북분불붉붐붓붙뷰브블비빌빔빗빛빠빨빵빼뻐뽑뿌뿐쁘삐사삭산살삶삼상새색샌생샤서"
    "석섞선설섬섭섯성세섹센셈셋션소속손솔솜송쇄쇼수숙순술숨숫숲쉬쉽슈스슨슬슴습승시식신싣실싫"
    "심십싱싶싸싹쌀쌍쌓써썩썰쏘쓰쓴쓸씀씨씩씬씹씻아악안앉않알앓암압앗앙앞애액앨야약얀얇양얗"
    "얘어억언얹얻얼엄업없엇엉엊엌엎에엔엘여역연열엷염엽엿영옆예옛오옥온올옮옳옷와완왕왜왠외"
    "왼요욕용우욱운울움웃웅워원월웨웬위윗유육율으은을음응의이익인일읽잃임입잇있잊잎자작잔잖"
    "잘잠잡장잦재쟁저적전절젊점접젓정젖제젠젯져조족존졸좀좁종좋좌죄주죽준줄줌줍중쥐즈즉즌즐"
    "즘증지직진질짐집짓징짙짚짜짝짧째쨌쩌쩍쩐쪽쫓쭈쯤찌찍찢차착찬찮찰참창찾채책챔챙처척천철첩"
    "첫청체쳐초촉촌총촬최추축춘출춤춥춧충취츠측층치칙친칠침칩칭카칸칼캐캠커컨컬컴컵컷케켓켜코"
    "콘콜콤콩쾌쿄쿠퀴크큰클큼키킬타탁탄탈탑탓탕태택탤터턱턴털텅테텍텔템토톤톨톱통퇴투툼퉁튀"
    "튜트특튼튿틀틈티틱팀팅파팎판팔팝패팩팬퍼퍽페펜펴편펼평폐포폭폰표푸푹풀품풍퓨프플픔피픽"
    "필핏핑"
)
_KANA = frozenset(chr(c) for c in (*range(0x3041, 0x3097), *range(0x30A1, 0x30FB), 0x30FC))
# Kana, common kanji (the common Chinese characters are, most of them, common kanji too) and
# Japanese punctuation. Halfwidth katakana are left out: Chinese and Korean double-byte text read
# as Shift_JIS turns into halfwidth katakana, Japanese mail seldom uses them.
COMMON_JAPANESE: frozenset[str] = _KANA | COMMON_CJK | frozenset("・〜")

# Label -> the codec real senders mean by it. Keys are lower-cased, "_" and " " turned into "-".
_ALIASES: dict[str, str] = {
    "gb2312": "gb18030",
    "gb-2312": "gb18030",
    "gb-2312-80": "gb18030",
    "gb2312-80": "gb18030",
    "euc-cn": "gb18030",
    "euccn": "gb18030",
    "x-euc-cn": "gb18030",
    "x-gbk": "gb18030",
    "gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "csgb2312": "gb18030",
    "chinese": "gb18030",
    "gb18030": "gb18030",
    "gb-18030": "gb18030",
    "big5": "big5hkscs",
    "big-5": "big5hkscs",
    "big5-tw": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "csbig5": "big5hkscs",
    "cp950": "big5hkscs",
    "ms950": "big5hkscs",
    "windows-950": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "big5hkscs": "big5hkscs",
    "ks-c-5601-1987": "cp949",
    "ks-c-5601": "cp949",
    "ksc5601": "cp949",
    "euc-kr": "cp949",
    "cp949": "cp949",
    "windows-949": "cp949",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "iso-ir-100": "cp1252",
    "cp819": "cp1252",
    "ibm819": "cp1252",
    "windows-1252": "cp1252",
    "cp1252": "cp1252",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "ansi-x3.4-1968": "ascii",
    "iso646-us": "ascii",
    "us": "ascii",
    "shift-jis": "cp932",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "cp932": "cp932",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "koi8-r": "koi8-r",
}

# What a label names, before the superset: used to tell whether the superset was actually needed
# ("declared gb2312, decoded as gb18030" only when the bytes are not GB2312).
_BASE_CODEC: dict[str, str] = {
    "gb2312": "gb2312",
    "gb-2312": "gb2312",
    "gb-2312-80": "gb2312",
    "gb2312-80": "gb2312",
    "euc-cn": "gb2312",
    "euccn": "gb2312",
    "x-euc-cn": "gb2312",
    "csgb2312": "gb2312",
    "x-gbk": "gbk",
    "gbk": "gbk",
    "cp936": "gbk",
    "ms936": "gbk",
    "windows-936": "gbk",
    "big5": "big5",
    "big-5": "big5",
    "big5-tw": "big5",
    "x-big5": "big5",
    "cn-big5": "big5",
    "csbig5": "big5",
    "cp950": "cp950",
    "ms950": "cp950",
    "windows-950": "cp950",
    "ks-c-5601-1987": "euc-kr",
    "ks-c-5601": "euc-kr",
    "ksc5601": "euc-kr",
    "euc-kr": "euc-kr",
}

# Codecs that are not text encodings or must never be used on untrusted labels.
_FORBIDDEN = frozenset(
    {
        "undefined",
        "unicode_escape",
        "raw_unicode_escape",
        "unicode_internal",
        "idna",
        "punycode",
        "mbcs",
        "oem",
        "charmap",
    }
)
# Codecs whose ASCII bytes do not mean ASCII text.
_ASCII_INCOMPATIBLE = frozenset(
    {"utf-7", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "hz"}
)
_SINGLE_BYTE_LATIN = frozenset(
    {
        "cp1252",
        "latin-1",
        "ascii",
        "iso8859-2",
        "iso8859-3",
        "iso8859-4",
        "iso8859-9",
        "iso8859-10",
        "iso8859-13",
        "iso8859-14",
        "iso8859-15",
        "iso8859-16",
        "cp1250",
        "cp1254",
        "cp1257",
        "cp437",
        "cp850",
        "mac-roman",
    }
)
_CJK_MULTIBYTE = frozenset({"gb18030", "big5hkscs", "cp949", "cp932", "euc_jp", "euc-jp"})
_CJK_CANDIDATES = ("gb18030", "big5hkscs")
# Tried after the Chinese codecs, with the characters their language mostly consists of.
_OTHER_CJK = ("cp949", "cp932", "euc_jp")
_LANGUAGE = {"cp949": "Korean", "cp932": "Japanese", "euc_jp": "Japanese"}
_COMMON_BY_CODEC: dict[str, frozenset[str]] = {
    "cp949": COMMON_HANGUL,
    "cp932": COMMON_JAPANESE,
    "euc_jp": COMMON_JAPANESE,
    "euc-jp": COMMON_JAPANESE,
}

_SCORE_SAMPLE = 20_000  # characters looked at when scoring
_CJK_ACCEPT = 0.35  # share of common characters needed to believe undeclared bytes are Chinese
_CJK_ACCEPT_OVER_LATIN = 0.5  # ... and to overrule a declared single-byte Latin label
_LOW_SCORE = 0.25  # a declared CJK decode this poor is checked against the alternatives
_CHINESE_SURE = 0.6  # Chinese reading this well: Korean and Japanese are not tried
_OTHER_MARGIN = 0.25  # how much better Korean or Japanese must read than Chinese to be chosen
_SHORT = 256  # bytes: below this charset-normalizer is not asked


@lru_cache(maxsize=512)
def normalize_charset(label: str | None) -> str | None:
    """The Python codec to decode with for a MIME charset label, or None if unknown or unusable."""
    if not label:
        return None
    key = label.strip().strip("\"'").strip().lower().replace("_", "-").replace(" ", "-")
    if "*" in key:  # RFC 2231 language suffix: utf-8*en
        key = key.split("*", 1)[0]
    if not key or len(key) > 40:
        return None
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        info = codecs.lookup(key)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _FORBIDDEN:
        return None
    name = info.name.replace("_", "-")
    if name in ("utf-8", "utf-7"):
        return name
    if name in ("iso8859-1", "latin-1"):
        return "cp1252"
    if name == "ascii":
        return "ascii"
    return info.name


def _base_codec(label: str) -> str | None:
    key = label.strip().strip("\"'").strip().lower().replace("_", "-").replace(" ", "-")
    return _BASE_CODEC.get(key)


def _share(text: str, common: frozenset[str]) -> tuple[float, int]:
    sample = text[:_SCORE_SAMPLE]
    non_ascii = len(sample) - len(sample.encode("ascii", "ignore"))
    if non_ascii == 0:
        return 0.0, 0
    return sum(map(common.__contains__, sample)) / non_ascii, non_ascii


def cjk_score(text: str) -> tuple[float, int]:
    """(share of non-ASCII characters that are common Chinese characters or punctuation, how many
    non-ASCII characters were looked at). Looks at the first 20,000 characters only."""
    return _share(text, COMMON_CJK)


def language_score(text: str, codec: str) -> tuple[float, int]:
    """cjk_score, with common Hangul for Korean codecs and kana for Japanese ones."""
    return _share(text, _COMMON_BY_CODEC.get(codec, COMMON_CJK))


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _best_cjk(data: bytes) -> tuple[str, str, float, int] | None:
    """The best East Asian reading of data: (text, codec, score, non-ASCII count). The better of
    gb18030 and big5hkscs, unless cp949 or cp932 reads markedly better (each scored by its own
    language's common characters)."""
    best: tuple[str, str, float, int] | None = None
    for codec in _CJK_CANDIDATES + _OTHER_CJK:
        if codec in _OTHER_CJK and best is not None and best[2] >= _CHINESE_SURE:
            break
        text = _strict(data, codec)
        if text is None:
            continue
        score, n = language_score(text, codec)
        # Beating Chinese by one character's worth is chance on a short text, not evidence.
        margin = max(_OTHER_MARGIN, 1 / n) if codec in _OTHER_CJK and best is not None else 0.0
        if best is None or score > best[2] + margin:
            best = (text, codec, score, n)
    return best


def _charset_normalizer(data: bytes) -> tuple[str, str] | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    try:
        match = from_bytes(data[:200_000]).best()
    except Exception:
        return None
    if match is None or not match.encoding:
        return None
    codec = normalize_charset(match.encoding) or match.encoding
    text = _strict(data, codec)
    if text is None:
        return None
    return text, codec


def _mostly_utf8(data: bytes) -> str | None:
    """data as UTF-8 when at most 2% of its non-ASCII bytes are invalid (a damaged UTF-8 text,
    not another charset: Latin or CJK text read as UTF-8 fails on nearly every non-ASCII byte)."""
    text = data.decode("utf-8", "replace")
    errors = text.count("\ufffd")
    high = len(data) - len(data.decode("ascii", "ignore"))
    if errors and errors <= high * 0.02:
        return text
    return None


def _detect(data: bytes) -> tuple[str, str] | None:
    """Guess the charset of 8-bit data: utf-8, the best Chinese codec, then charset-normalizer."""
    text = _strict(data, "utf-8")
    if text is not None:
        return text, "utf-8"
    text = _mostly_utf8(data)
    if text is not None:
        return text, "utf-8 (with replacement characters)"
    best = _best_cjk(data)
    if best is not None and best[2] >= _CJK_ACCEPT:
        return best[0], best[1]
    if len(data) < _SHORT:
        # Too short for statistics (a header, a file name): the detectors guess wildly there
        # (hp-roman8, utf-16-be for "Frösche"); Western mail's own charset is the best bet.
        text = _strict(data, "cp1252")
        if text is not None:
            return text, "cp1252"
    found = _charset_normalizer(data)
    if found is not None:
        text, codec = found
        if codec.replace("_", "-").startswith(("utf-16", "utf-32")) and b"\x00" not in data:
            return None
        # For short Western text the detectors pick among near-identical codecs at random;
        # prefer the one most mail uses when it gives the same text.
        if codec != "cp1252" and _strict(data, "cp1252") == text:
            return text, "cp1252"
        return found
    if best is not None and best[2] > 0:
        return best[0], best[1]
    return None


def _latin_alternative(data: bytes) -> tuple[str, str, str] | None:
    """UTF-8 or CJK text hiding behind a single-byte Latin label: (text, codec, why)."""
    text = _strict(data, "utf-8")
    if text is not None:
        return text, "utf-8", "bytes are valid UTF-8"
    best = _best_cjk(data)
    if best is not None and best[2] >= _CJK_ACCEPT_OVER_LATIN and best[3] >= 2:
        return best[0], best[1], f"content looks like {_LANGUAGE.get(best[1], 'Chinese')}"
    return None


def decode_bytes(data: bytes, declared: str | None) -> tuple[str, str, list[str]]:
    """Decode data per the charset policy: (text, codec actually used, warnings)."""
    warnings: list[str] = []
    label = (declared or "").strip().strip("\"'").strip()
    codec = normalize_charset(label) if label else None
    shown = label.lower()

    if not data:
        return "", codec or "ascii", warnings
    is_ascii = data.isascii()
    if is_ascii and (codec is None or codec not in _ASCII_INCOMPATIBLE):
        if codec is None and b"\x1b" in data and (b"\x1b$" in data or b"\x1b(" in data):
            text = _strict(data, "iso2022_jp")
            if text is not None:
                if label:
                    warnings.append(f"charset declared {shown} is unknown, detected iso-2022-jp")
                return text, "iso2022_jp", warnings
        return data.decode("ascii"), codec or "ascii", warnings

    if codec is not None and codec != "ascii":
        base = _base_codec(label)
        text = None
        if base is not None and base != codec:
            text = _strict(data, base)  # same characters as the superset would give
        if text is None:
            text = _strict(data, codec)
            if text is not None and base is not None and base != codec:
                warnings.append(f"charset declared {shown}, decoded as {codec}")
        if text is not None:
            if codec in _SINGLE_BYTE_LATIN:
                alt = _latin_alternative(data)
                if alt is not None:
                    return (
                        alt[0],
                        alt[1],
                        [f"charset declared {shown}, decoded as {alt[1]} ({alt[2]})"],
                    )
            elif codec in _CJK_MULTIBYTE:
                score, n = language_score(text, codec)
                utf8 = _strict(data, "utf-8")
                if utf8 is not None:
                    u_score, _ = cjk_score(utf8)
                    if u_score > score or (score < _LOW_SCORE and n >= 2):
                        return (
                            utf8,
                            "utf-8",
                            [f"charset declared {shown}, decoded as utf-8 (bytes are valid UTF-8)"],
                        )
                elif codec in _CJK_CANDIDATES and score < _LOW_SCORE and n >= 4:
                    other = (
                        _CJK_CANDIDATES[1] if codec == _CJK_CANDIDATES[0] else _CJK_CANDIDATES[0]
                    )
                    other_text = _strict(data, other)
                    if other_text is not None:
                        o_score, _ = cjk_score(other_text)
                        if o_score >= score + 0.3:
                            return (
                                other_text,
                                other,
                                [
                                    f"charset declared {shown}, decoded as {other} "
                                    "(content looks like the other Chinese encoding)"
                                ],
                            )
            return text, codec, warnings
        if codec == "cp1252":  # iso-8859-1 with bytes cp1252 leaves undefined: C1 controls
            alt = _latin_alternative(data)
            if alt is not None:
                return alt[0], alt[1], [f"charset declared {shown}, decoded as {alt[1]} ({alt[2]})"]
            return data.decode("latin-1"), "latin-1", warnings
        reason = f"charset declared {shown} does not fit the data"
    elif codec == "ascii":
        reason = f"charset declared {shown} but the data has 8-bit bytes"
    elif label:
        reason = f"charset declared {shown} is unknown"
    else:
        reason = "charset missing"

    found = _detect(data)
    if found is not None:
        text, used = found
        warnings.append(f"{reason}, detected {used}")
        return text, used, warnings
    fallback = codec if codec is not None and codec != "ascii" else "utf-8"
    warnings.append(f"{reason}, decoded as {fallback} with replacement characters")
    return data.decode(fallback, "replace"), fallback, warnings


# ---------------------------------------------------------------------------------------------
# Header values (RFC 2047)

# Whitespace cannot be part of an encoded-word (RFC 2047 section 5), but senders' folding puts
# line breaks anywhere in one, and where the header was unfolded before it reaches us only the
# space is left: blanks are accepted in the encoded text (dropped from base64, kept in Q).
_ENCODED_WORD = re.compile(rb"=\?([^?\s]{1,60})\?([bBqQ])\?([^?\r\n]*)\?=")
_FOLD = re.compile(rb"\r?\n(?=[ \t])|\r?\n")
# An encoded-word with folds anywhere in it, even inside "=?" or "?=": those folds are removed,
# line break and indentation, before the header is unfolded.
_F = rb"(?:\r?\n[ \t]+)*"
_FOLDED_WORD = re.compile(
    _F.join(
        (
            rb"=",
            rb"\?",
            rb"(?:[^?\s]" + _F + rb"){1,60}\?",
            rb"[bBqQ]",
            rb"\?(?:[^?\r\n]|\r?\n(?=[ \t]))*\?",
            rb"=",
        )
    )
)
_FOLD_IN_WORD = re.compile(rb"\r?\n[ \t]+")
_NOT_ESCAPE = re.compile("[\ud800-\udc7f\udd00-\udfff]")  # surrogates, but for U+DC80..U+DCFF
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def _to_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    # The email package keeps raw 8-bit header bytes as surrogate escapes; real non-ASCII
    # characters (from a str source) go back to UTF-8.
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte: not text at all
        return _NOT_ESCAPE.sub("\ufffd", value).encode("utf-8", "surrogateescape")


def _decode_word(encoding: bytes, payload: bytes) -> bytes | None:
    if encoding in (b"B", b"b"):
        clean = _B64_JUNK.sub(b"", payload)
        clean = clean[: len(clean) - len(clean) % 4] if len(clean) % 4 == 1 else clean
        clean += b"=" * (-len(clean) % 4)
        try:
            return base64.b64decode(clean)
        except (binascii.Error, ValueError):
            return None
    return _Q_ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), payload.replace(b"_", b" "))


def _decode_raw(chunk: bytes, warnings: list[str]) -> str:
    if chunk.isascii():
        return chunk.decode("ascii")
    text = _strict(chunk, "utf-8")  # raw UTF-8 in headers is legal (RFC 6532): no warning
    if text is not None:
        return text
    text, _, notes = decode_bytes(chunk, None)
    warnings.extend(notes)
    return text


def _same_codec(a: bytes, b: bytes) -> bool:
    if a == b:
        return True
    codec = normalize_charset(a.decode("ascii", "replace"))
    return codec is not None and codec == normalize_charset(b.decode("ascii", "replace"))


def decode_header_value_with_warnings(value: str | bytes) -> tuple[str, list[str]]:
    """decode_header_value that also returns the charset warnings."""
    warnings: list[str] = []
    data = _to_bytes(value)
    if b"\n" in data:
        if b"=" in data:
            data = _FOLDED_WORD.sub(lambda m: _FOLD_IN_WORD.sub(b"", m.group()), data)
        data = _FOLD.sub(b"", data)
    if b"=?" not in data:
        return _decode_raw(data, warnings).strip(), warnings

    out: list[str] = []
    pending: list[bytes] = []  # decoded bytes of adjacent encoded-words in one charset
    pending_charset: bytes | None = None

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            charset = pending_charset.decode("ascii", "replace")
            text, _, notes = decode_bytes(b"".join(pending), charset)
            out.append(text)
            warnings.extend(notes)
        pending.clear()
        pending_charset = None

    pos = 0
    previous_was_word = False
    for match in _ENCODED_WORD.finditer(data):
        between = data[pos : match.start()]
        decoded = _decode_word(match.group(2), match.group(3))
        if decoded is None:  # malformed: keep the encoded-word as it was
            flush()
            out.append(_decode_raw(data[pos : match.end()], warnings))
            pos = match.end()
            previous_was_word = False
            continue
        if between and not (previous_was_word and not between.strip(b" \t")):
            flush()
            out.append(_decode_raw(between, warnings))
        charset = match.group(1).lower()
        if b"*" in charset:
            charset = charset.split(b"*", 1)[0]
        # Words labelled gb2312 and then gbk (one client, two encoders) still join their bytes.
        if pending_charset is not None and not _same_codec(charset, pending_charset):
            flush()
        if pending_charset is None:
            pending_charset = charset
        pending.append(decoded)
        pos = match.end()
        previous_was_word = True
    flush()
    out.append(_decode_raw(data[pos:], warnings))
    return "".join(out).strip(), warnings


def decode_header_value(value: str | bytes) -> str:
    """Decode a header value: RFC 2047 encoded-words in any charset (adjacent words in one charset
    joined before decoding, so characters split across words survive), folded lines unfolded, raw
    8-bit bytes detected like an undeclared body, malformed encoded-words left as they are."""
    return decode_header_value_with_warnings(value)[0]
