"""Reproducible generator of realistic Chinese / English business e-mail.

Used by the search precision/recall tests and by the ingest/search benchmarks.
Everything is derived from ``random.Random`` streams seeded with strings built
from ``(seed, index)``, so

* the same seed always yields byte-identical messages, and
* message ``i`` is the same whether produced by ``generate(n, seed)`` or by
  ``generate(m, seed, start=k)`` with ``k <= i < k + m`` (batches can be built
  in parallel and concatenated).

The MIME is assembled by hand (the ``email`` package is far too slow for
100k-message corpora) but is valid RFC 5322 / RFC 2045-2047 / RFC 2231 with
CRLF line endings and lines well below 998 octets.

Only the standard library is needed at run time.

CLI::

    python -m bench.mailgen --count 20000 --seed 42 --out /tmp/corpus.mbox
    python -m bench.mailgen --count 500 --format eml --out /tmp/corpus_dir
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as _dt
import html
import random
import re
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "BIG5_KEYWORDS",
    "CHARSETS",
    "POSITIVE_CASES",
    "PRECISION_CASES",
    "ZH_KEYWORDS",
    "GeneratedMessage",
    "english_keyword",
    "generate",
    "main",
    "to_traditional",
    "write_eml_dir",
    "write_mbox",
]

CHARSETS = ("utf-8", "gb2312", "gbk", "gb18030", "big5")


@dataclass(frozen=True)
class GeneratedMessage:
    raw: bytes  # the full RFC 5322 message, CRLF line endings
    index: int
    message_id: str  # without angle brackets
    subject: str  # decoded subject text
    # decoded plain-text body, "\n" line ends (for HTML-only mail: the text of the HTML,
    # blockquotes without "> "); compare modulo whitespace
    body_text: str
    charset: str  # charset actually used for the body bytes
    declared_charset: str | None  # lower-cased charset parameter, None when absent
    transfer_encoding: str  # base64 | quoted-printable | 8bit
    attachment_names: list[str]
    keywords: list[str]  # distinctive words placed in subject or body
    language: str  # "zh", "en", "mixed"
    # --- extras (not needed by most callers) ---
    content_kind: str = "plain"  # plain | alternative | html
    # None | gbk_as_gb2312 | gb18030_as_gb2312 | gbk_as_latin1 (iso-8859-1/us-ascii) | no_charset
    mislabel: str | None = None
    in_reply_to: str | None = None
    date: str | None = None  # Date header value, None when the header is missing
    from_addr: str = ""
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)  # name, ctype, data


# ---------------------------------------------------------------------------
# Search test fixtures (verified with jieba 0.42.1 in tests/bench/test_mailgen.py)
# ---------------------------------------------------------------------------

#: (text, query): the query's characters are adjacent in ``text`` only across a
#: jieba word boundary.  A unigram/bigram analyzer matches, a jieba index must not.
PRECISION_CASES: list[tuple[str, str]] = [
    ("南京市长江大桥", "市长"),  # 南京市 / 长江大桥
    ("武汉市长江二桥", "市长"),  # 武汉市 / 长江 / 二桥
    ("上海市长宁区", "市长"),  # 上海市 / 长宁区
    ("研究生命起源", "研究生"),  # 研究 / 生命 / 起源
    ("结婚的和尚未结婚的", "和尚"),  # 和 / 尚未
    ("他说的确实在理", "的确"),  # 的 / 确实
    ("乒乓球拍卖完了", "球拍"),  # 乒乓球 / 拍卖
    ("网球拍卖会", "球拍"),  # 网球 / 拍卖会
    ("部分居民生活水平明显提高", "民生"),  # 居民 / 生活
    ("这块地面积不大", "地面"),  # 地 / 面积
    ("马上海边见", "上海"),  # 马上 / 海边
    ("今天下雨天气很冷", "雨天"),  # 下雨 / 天气
    ("其中国有资产占比较高", "中国"),  # 其中 / 国有资产
    ("和服务员沟通", "和服"),  # 和 / 服务员
]

#: (text, query): the query IS a jieba token of ``text`` (must match).
POSITIVE_CASES: list[tuple[str, str]] = [
    ("南京市长江大桥", "长江大桥"),
    ("上海市长宁区", "长宁区"),
    ("研究生命起源", "生命"),
    ("请大家准时参加周一的会议", "会议"),
    ("他马上就来", "马上"),
    ("合同审批流程已经完成", "合同"),
    ("季度报告已经发送给财务部", "报告"),
    ("他说的确实在理", "确实"),
]

# ---------------------------------------------------------------------------
# Keyword pools
# ---------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Concrete nouns that never occur in the business filler text.  Every word is a
# single jieba token (jieba.lcut(w) == [w]); checked by the tests.  Words that are
# identical in Simplified and Traditional script and encodable in Big5 and GB2312
# form the Big5 pool; the rest is used by Simplified-script messages.
BIG5_KEYWORDS: tuple[str, ...] = _words(
    """
    袋鼠 孔雀 海豚 蜻蜓 蝴蝶 向日葵 薰衣草 牡丹 茉莉 桂花 荔枝 芒果 枇杷 柚子 石榴 葡萄
    草莓 西瓜 哈密瓜 琵琶 二胡 笛子 小提琴 吉他 陀螺 毽子 敦煌 峨眉山 喀什
    老虎 大象 犀牛 狐狸 松鼠 兔子 麻雀 燕子 蝙蝠 蜜蜂 蜘蛛 螃蟹 海星 水母 玫瑰 百合
    菊花 荷花 梅花 水仙 仙人掌 梧桐 椰子 木瓜 橘子 香蕉 桃子 李子 杏子 山楂 板栗 核桃
    """
)

ZH_KEYWORDS: tuple[str, ...] = _words(
    """
    熊猫 长颈鹿 企鹅 骆驼 鲸鱼 萤火虫 郁金香 榴莲 菠萝 猕猴桃 杨梅 樱桃 古筝 唢呐 钢琴
    灯笼 风筝 饺子 馄饨 汤圆 粽子 月饼 煎饼 火锅 烤鸭 兵马俑 九寨沟 漓江 丽江 吐鲁番
    呼伦贝尔 西双版纳 张家界 鼓浪屿 乌镇 周庄 黄鹤楼 岳阳楼 滕王阁 狮子 斑马 河马 猎豹
    刺猬 乌龟 鹦鹉 天鹅 白鹭 丹顶鹤 海鸥 猫头鹰 啄木鸟 喜鹊 蚂蚁 龙虾 章鱼 兰花 杜鹃
    芦荟 竹笋 银杏 白桦 红杉 柳树 松树 柠檬 苹果 红枣 巧克力 布丁 冰淇淋 奶茶 豆浆
    油条 馒头 烧麦 春卷 糖葫芦 酸奶 奶酪 寿司 披萨 汉堡 三明治 牛排 羊肉串 凉皮
    肉夹馍 热干面 小笼包 腊肠 皮蛋 豆花 米线 年糕 酱油 花椒 桂皮 生姜 大蒜 香菜 韭菜
    茄子 土豆 番茄 黄瓜 南瓜 冬瓜 丝瓜 苦瓜 萝卜 白菜 菠菜 芹菜 蘑菇 木耳 海带 紫菜
    琥珀 翡翠 玛瑙 珍珠 钻石 蓝宝石 红宝石 祖母绿 绿松石 和田玉 青铜 紫砂壶 砚台 毛笔
    宣纸 折扇 屏风 刺绣 剪纸 泥人 皮影 年画 对联 鞭炮 烟花 花灯 舞狮 龙舟 秋千 跳绳
    象棋 围棋 麻将 扑克 魔方 积木 拼图 滑板 溜冰 冲浪 攀岩 蹦极 射箭 击剑 马术
    台球 保龄球 羽毛球 乒乓球 排球 橄榄球 高尔夫 彗星 流星 银河 北斗 极光 彩虹 冰川
    火山 瀑布 峡谷 沙漠 绿洲 珊瑚礁 海啸 龙卷风 冰雹 雪崩 钟乳石 化石 恐龙 猛犸象
    嫦娥 后羿 哪吒 孙悟空 猪八戒 沙僧 白骨精 女娲 伏羲 盘古 精卫 夸父 麒麟 凤凰 貔貅
    饕餮 九尾狐 灯塔 风车 水车 磨坊 城堡 宫殿 寺庙 宝塔 牌坊 石狮 拱桥 栈道 吊桥 索道
    缆车 热气球 飞艇 潜水艇 帆船 游艇 独木舟 竹筏 马车 黄包车 三轮车 自行车 摩托车
    拖拉机 收割机 挖掘机 推土机 起重机 望远镜 显微镜 指南针 地球仪 沙漏 日晷 算盘
    留声机 收音机 打字机 缝纫机 八音盒 万花筒 放大镜 温度计 气压计 风向标 避雷针
    """
)

_SYLLABLES = _words(
    "zor vel qua mir tax bel dru kon fex lum rav syl tor wex yar zin "
    "gal hob jup kel nox pim quo ryx sab tev ulm vox wib xan yul zep"
)
_CODE_MASK = (1 << 20) - 1


def english_keyword(seed: int, index: int, slot: int) -> str:
    """Synthetic project codename, unique per (index, slot) for index < 349,525."""
    v = ((index * 3 + slot) * 0x9E3B5 + (seed * 0x51ED27)) & _CODE_MASK
    parts = [_SYLLABLES[(v >> s) & 31] for s in (15, 10, 5, 0)]
    return "".join(parts).capitalize()


# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------

_SURNAMES = [
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
    ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
    ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"),
    ("郭", "guo"), ("何", "he"), ("林", "lin"), ("高", "gao"), ("罗", "luo"),
    ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"),
    ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
]  # fmt: skip
_GIVEN = [
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"),
    ("磊", "lei"), ("强", "qiang"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"),
    ("艳", "yan"), ("杰", "jie"), ("涛", "tao"), ("明", "ming"), ("超", "chao"),
    ("秀英", "xiuying"), ("霞", "xia"), ("平", "ping"), ("刚", "gang"), ("建华", "jianhua"),
    ("晓东", "xiaodong"), ("丽华", "lihua"), ("志强", "zhiqiang"), ("海燕", "haiyan"),
    ("文博", "wenbo"), ("思远", "siyuan"), ("雨桐", "yutong"), ("子涵", "zihan"),
    ("浩然", "haoran"), ("嘉怡", "jiayi"),
]  # fmt: skip
# Given names outside GB2312 (present in GBK; the last one only in GB18030).
_RARE_GIVEN_GBK = [("喆", "zhe"), ("堃", "kun"), ("镕", "rong"), ("犇", "ben"), ("昇", "sheng")]
_RARE_GIVEN_GB18030 = [("䶮", "yan")]
_EN_NAMES = [
    "Michael Chen", "Sarah Johnson", "David Liu", "Emily Wang", "James Smith",
    "Jennifer Lee", "Robert Zhang", "Linda Wu", "Kevin Huang", "Amy Lin",
    "Daniel Brown", "Grace Zhou", "Thomas Miller", "Olivia Xu", "Peter Ho",
]  # fmt: skip
_DOMAINS = ["example.com", "example.cn", "corp.example", "mail.example.cn", "example.com"]
_DEPTS = ["市场部", "销售部", "财务部", "人力资源部", "研发中心", "采购部", "法务部", "行政部",
          "技术支持部", "运营部"]  # fmt: skip
_TITLES = ["经理", "主管", "总监", "专员", "工程师", "助理", "副总经理"]
_COMPANIES = _words(
    "华信科技有限公司 东方贸易有限公司 恒通物流股份有限公司 蓝海电子有限公司 "
    "瑞丰建设集团 新源医药有限公司 博远咨询有限公司 启明软件有限公司"
)
_CLIENTS = ["华东电网", "远洋集团", "金石证券", "星河地产", "中联医疗", "正泰制造", "宏达汽车",
            "长城信息"]  # fmt: skip
_PRODUCTS = ["服务器", "交换机", "办公家具", "打印耗材", "笔记本电脑", "安全网关", "存储阵列",
             "软件许可证", "监控摄像头", "不间断电源"]  # fmt: skip
_CITIES = ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "苏州", "天津",
           "重庆"]  # fmt: skip
_PROJECTS = ["智慧园区项目", "数据中台项目", "供应链优化项目", "客户关系管理系统", "新零售门店改造",
             "财务共享中心", "华东区域扩展计划"]  # fmt: skip
_DOCS = ["技术方案", "合同草案", "项目计划书", "需求说明书", "验收报告", "培训手册"]
_EN_CLIENTS = ["Acme Corp", "Globex", "Initech", "Umbrella Ltd", "Stark Industries",
               "Wayne Enterprises", "Hooli", "Vandelay Imports"]  # fmt: skip
_EN_PRODUCTS = ["rack servers", "network switches", "office furniture", "laptops", "storage arrays",
                "software licenses", "security cameras", "UPS units"]  # fmt: skip
_EN_PROJECTS = ["data platform", "CRM migration", "supply chain revamp", "east region expansion",
                "billing rewrite", "mobile app relaunch"]  # fmt: skip
_EN_TEAMS = ["Sales", "Finance", "Marketing", "Engineering", "Procurement", "Legal", "Operations"]
_CN_WEEKDAYS = "一二三四五"

_ZH_SENTENCES = [
    "根据{date}的会议安排，{dept}需要在本周五之前提交相关材料。",
    "{proj}目前整体进度约为{pct}%，比原计划略有延后。",
    "请各部门负责人于{date}前将本季度的预算执行情况报送财务部。",
    "{client}的{product}采购需求已经确认，共计{n}台，总金额约{amount}元。",
    "本次报价有效期为三十天，含税含运费，付款方式为预付百分之三十。",
    "合同条款中关于违约责任的部分，法务部建议再做一次修改。",
    "{person}负责与客户沟通，{person2}负责内部协调和进度跟踪。",
    "上周共处理客户工单{n}件，其中紧急工单{m}件，平均响应时间为{h}小时。",
    "为进一步规范报销流程，自{date}起所有差旅费用须通过新系统提交。",
    "如有任何疑问，请随时与我联系，电话：{phone}。",
    "会议决定由{dept}牵头，成立专项工作小组，{date}前完成方案初稿。",
    "考虑到{city}地区的物流成本上涨，建议适当调整供货价格。",
    "本周完成了系统的压力测试，峰值并发达到每秒{n}次，各项指标正常。",
    "请大家注意信息安全，不要将公司内部文件转发到外部邮箱。",
    "下个月将在{city}举办客户交流会，预计参会人数约{n}人。",
    "附件是最新版本的{doc}，请审阅后给出修改意见。",
    "因办公楼电力检修，{date}全天暂停供电，请提前做好数据备份。",
    "经过多轮谈判，双方在交货周期和售后服务方面基本达成一致。",
    "年度绩效考核将于下月初启动，请各位提前准备个人总结。",
    "{dept}本月的费用支出为{amount}元，占全年预算的{pct}%。",
    "供应商反馈原材料价格持续上涨，第三季度的成本压力较大。",
    "新员工入职培训安排在{date}，地点为总部三楼大会议室。",
    "对于客户提出的投诉，我们已经安排专人跟进，并将在三个工作日内给出答复。",
    "请在OA系统中完成审批，审批通过后由采购部统一下单。",
    "目前的主要风险在于需求变更频繁，建议尽快冻结需求范围。",
    "{client}希望在{date}之前完成首批交付，时间比较紧张。",
    "本次会议的主要议题包括：市场拓展、成本控制和团队建设。",
    "请相关同事按照会议纪要中的分工，推进各项工作的落实。",
    "关于发票的开具，请提供完整的开票信息，包括税号和开户银行。",
    "仓库盘点发现{product}库存与系统记录存在差异，差异数量为{m}件。",
    "我们计划在{city}设立新的办事处，预计年底前完成选址。",
    "经初步评估，该方案的投资回收期约为{y}年。",
    "为了提升客户满意度，售后服务团队将实行全天候值班制度。",
    "上述事项请于本周内确认，逾期将视为同意。",
    "感谢大家在过去一个季度的辛勤付出，整体业绩超额完成了目标。",
    "培训结束后需要参加线上考试，成绩合格者将获得结业证书。",
    "此前提交的申请材料缺少部门负责人的签字，请补齐后重新提交。",
    "机房将于{date}晚间进行例行维护，届时部分系统无法访问。",
    "财务部提醒：本月报销截止日期为{date}，逾期将顺延至下月处理。",
    "我们与{client}的合作已经进入第{y}年，双方关系稳定。",
    "关于{proj}的验收标准，请参考附件中的技术规格说明书。",
    "人力资源部将于近期开展员工满意度调查，请大家积极参与。",
    "请注意，以上价格不含安装调试费用，如需上门服务另行报价。",
    "本周的重点工作是完成招标文件的编制和内部评审。",
    "受节假日影响，物流配送时间可能延长两到三天。",
    "{person}已经将修改后的{doc}上传到共享目录，请及时查阅。",
    "下周{weekday}上午十点召开项目例会，请准时参加。",
    "根据公司规定，单笔超过{amount}元的采购需要总经理审批。",
    "此次系统升级后，原有账号和密码保持不变。",
    "我们对{city}分公司的销售数据进行了汇总，同比增长{pct}%。",
]

_MIXED_SENTENCES = [
    "请review一下JIRA-{n}的patch，有问题直接在PR里comment。",
    "今天下午的stand-up改到{hh}点，请大家准时参加。",
    "这个bug在staging环境可以稳定复现，相关log已经上传到共享盘。",
    "deadline是{date}，如果有blocker请及时sync。",
    "{person}负责backend，{person2}负责frontend的UI调整。",
    "这次release包括{n}个feature和{m}个bugfix，release notes见Confluence。",
    "CPU使用率在高峰期超过了{pct}%，需要做一下capacity planning。",
    "会议link已经发在calendar invite里了，大家记得accept。",
    "我们的KPI是把P99 latency降到{n}ms以内。",
    "目前的roadmap分为三个milestone，第一个milestone在{date}交付。",
    "请把最新的PPT发给我，明天要跟老板做presentation。",
    "客户那边的POC环境已经搭好，VPN账号稍后单独发给大家。",
    "这个需求的priority比较高，建议这个sprint就排进去。",
    "数据库migration脚本已经merge到main分支，请注意回滚方案。",
    "Q{q}的OKR已经更新到wiki，请各位owner确认一下。",
    "我这边的code review意见都已经resolve了，可以merge。",
    "线上告警已经recover，root cause还在分析中，postmortem本周五前完成。",
    "如果有任何question，欢迎随时ping我。",
    "新版本的API文档已经update，主要变化是认证方式改成了OAuth。",
    "这周的on-call是{person}，有紧急问题请直接打电话。",
    "budget方面还需要跟finance再确认一下。",
    "vendor的报价比上次高了{pct}%，需要再negotiate一下。",
    "下周一的kick-off meeting请大家预留一个小时。",
    "Docker镜像已经推到内部registry，tag是v{ver}。",
    "测试覆盖率目前是{pct}%，目标是八十以上。",
]

_EN_SENTENCES = [
    "As discussed in the meeting on {edate}, the {team} team will submit the materials by Friday.",
    "The {eproj} is currently about {pct}% complete, slightly behind the original plan.",
    "Please send the updated budget figures to Finance before {edate}.",
    "{eclient} confirmed the order for {n} {eproduct}, for a total of about ${amount}.",
    "This quotation is valid for thirty days and includes tax and shipping.",
    "Legal has asked for another round of edits on the liability clause.",
    "{ename} will own the customer communication, and {ename2} will track the schedule.",
    "Last week we closed {n} support tickets, {m} of them marked urgent.",
    "Starting {edate}, all travel expenses must be filed through the new portal.",
    "If you have any questions, feel free to reach me at {phone}.",
    "We agreed that {team} will lead a small task force and deliver a first draft by {edate}.",
    "Given the rising logistics costs, we suggest revisiting the price list.",
    "The load test finished this week; peak throughput reached {n} requests per second.",
    "Please do not forward internal documents to personal mailboxes.",
    "We will host a customer event next month; roughly {n} attendees are expected.",
    "Attached is the latest version of the proposal, please review and comment.",
    "Due to scheduled power maintenance on {edate}, please back up your work in advance.",
    "After several rounds of negotiation we are aligned on delivery dates and support terms.",
    "Annual performance reviews start early next month, so please prepare your self-assessment.",
    "{team} spent ${amount} this month, which is {pct}% of the annual budget.",
    "Our supplier warned that raw material prices will keep rising through Q{q}.",
    "New hire orientation is scheduled for {edate} in the main conference room.",
    "We have assigned an owner to the customer complaint and will respond within three days.",
    "The main risk right now is scope creep, so I suggest we freeze the requirements soon.",
    "{eclient} wants the first batch delivered before {edate}, which is a tight timeline.",
    "From our side, the remaining open items are pricing and the service level agreement.",
    "The data center will be down for routine maintenance on the evening of {edate}.",
    "Please approve the request in the workflow system so Procurement can place the order.",
    "Thanks everyone for the hard work this quarter, we exceeded the target by {pct}%.",
    "Note that the prices above do not include installation or on-site support.",
    "This week the focus is on finishing the tender documents and the internal review.",
    "Shipping may take two or three extra days because of the holidays.",
    "I uploaded the revised deck to the shared drive, let me know if anything is missing.",
    "Our weekly sync moves to {eweekday} at 10am starting next week.",
    "Sales in the east region grew {pct}% year over year.",
]

# Keyword sentence templates.  The keyword is delimited by punctuation or by
# neighbours that jieba keeps separate (checked by the tests).
ZH_KEYWORD_TEMPLATES = [
    "另外，本次活动的主题定为“{kw}”，请各部门提前准备。",
    "附件中关于「{kw}」的资料请查收。",
    "项目内部代号为“{kw}”，对外沟通时请勿提及。",
    "客户在会上特别提到了“{kw}”，希望我们在方案中有所体现。",
    "年会节目单里新增了“{kw}”主题展示环节。",
    "下次团建的主题暂定为「{kw}」，欢迎大家提出建议。",
    "备注：新品包装采用{kw}图案，样稿见附件。",
]
ZH_KEYWORD_SUBJECTS = ["关于“{kw}”专项工作的通知", "【{kw}】项目会议纪要", "“{kw}”系列产品报价单",
                       "「{kw}」活动方案征求意见"]  # fmt: skip
MIXED_KEYWORD_TEMPLATES = [
    "“{kw}”项目的kick-off定在下周，请大家先review一下proposal。",
    "关于「{kw}」的design doc已经放到wiki上了，欢迎comment。",
    "这次campaign的主题是“{kw}”，请marketing同事准备素材。",
]
MIXED_KEYWORD_SUBJECTS = ["[{kw}] sprint周报", "「{kw}」项目kick-off会议邀请"]
EN_KEYWORD_TEMPLATES = [
    "The {kw} rollout is scheduled for next Tuesday.",
    "Please keep the codename {kw} confidential until launch.",
    "Budget for project {kw} was approved this morning.",
]
EN_KEYWORD_SUBJECTS = ["[{kw}] status update", "Project {kw}: next steps"]
MIXED_EN_KEYWORD_TEMPLATES = ["请帮忙check一下 {kw} 的deploy状态。", "{kw} 这个模块的owner是谁？"]

_ZH_SUBJECTS = [
    "关于{notice}的通知", "{date}项目例会会议纪要", "{client}报价单（第{y}版）",
    "【合同审批】{client}{product}采购合同", "{dept}第{week}周工作周报",
    "请审批：{city}出差费用报销",
    "{proj}进度汇报", "{product}采购申请", "关于{notice}的补充说明", "{q}季度销售数据汇总",
    "会议纪要：{proj}需求评审", "【重要】{notice}", "{client}投诉处理结果反馈",
]  # fmt: skip
_ZH_NOTICES = ["春节放假安排", "调整办公区域", "开展年度安全检查", "报销流程变更", "系统升级维护",
               "组织员工体检", "启用新版考勤系统", "加强信息安全管理", "年度预算编制",
               "召开季度总结大会"]  # fmt: skip
_MIXED_SUBJECTS = [
    "请review一下JIRA-{n}的patch", "【Release】v{ver}上线计划", "{eproj} sprint {week} 周报",
    "关于Q{q} OKR的对齐会议", "PR #{n} code review意见", "AWS账单异常的说明", "staging环境今晚维护",
    "Re: 关于API rate limit的讨论",
]  # fmt: skip
_EN_SUBJECTS = [
    "Weekly report - week {week}", "Meeting notes: {eproj} sync", "Quotation for {eproduct}",
    "Contract approval needed: {eclient}", "Action required: expense reports due {edate}",
    "Q{q} budget review", "Invitation: {team} quarterly planning",
    "Follow-up on {eclient} complaint",
    "Updated timeline for the {eproj}", "Reminder: security training",
]  # fmt: skip
_ZH_GREETINGS = ["{name}，您好：", "各位同事：", "{name}：", "Hi {name}，", "大家好，",
                 "尊敬的{name}："]  # fmt: skip
_ZH_CLOSINGS = ["谢谢！", "以上，请知悉。", "如有问题请及时反馈。", "辛苦了，谢谢大家！", "祝好！",
                "此致\n敬礼"]  # fmt: skip
_EN_GREETINGS = ["Hi {name},", "Dear {name},", "Hello team,", "Hi all,", "{name},"]
_EN_CLOSINGS = ["Thanks,", "Best regards,", "Cheers,", "Kind regards,", "Thanks in advance,"]
_ATTACHMENTS = [
    ("季度报告.pdf", "application/pdf"), ("合同草案.docx",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("报价单.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("会议纪要.txt", "text/plain"), ("产品图片.png", "image/png"),
    ("项目计划.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ("发票扫描件.pdf", "application/pdf"), ("技术方案.doc", "application/msword"),
    ("数据导出.csv", "text/csv"), ("Q3_report.pdf", "application/pdf"),
    ("budget 2024.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("员工通讯录.zip", "application/zip"), ("logo.png", "image/png"),
]  # fmt: skip
_MAILERS = ["Foxmail 7.2.25.228[cn]", "Microsoft Outlook 16.0", "Coremail Webmail Server",
            "Apple Mail (2.3731)", "Mozilla Thunderbird 115.6"]  # fmt: skip
_TZ = [480] * 14 + [0, 0, -300, -420, -480, 540, 330, 60, 600]

# Simplified -> Traditional character map for the vocabulary above (generated
# once with OpenCC s2t on the templates, then frozen here).
_S2T_PAIRS = (
    "万萬与與专專业業东東丝絲两兩个個丰豐为為丽麗举舉乌烏书書于於产產仓倉仪儀们們价價"
    "优優会會伟偉传傳伦倫体體储儲兰蘭关關内內册冊写寫军軍冯馮冲衝决決况況冻凍准準凉涼"
    "凤鳳击擊划劃刘劉刚剛别別剑劍办辦务務动動区區医醫华華协協单單卖賣卜蔔占佔卫衛压壓"
    "参參双雙发發变變号號后後启啟吴吳呐吶员員咨諮响響唢嗩啸嘯团團园園围圍国國图圖圆圓"
    "场場块塊声聲壶壺处處备備复復头頭夹夾娲媧孙孫宁寧宝寶实實审審宫宮对對导導寿壽将將"
    "尔爾尽儘届屆屿嶼岩巖峡峽师師带帶帮幫并並广廣庄莊庆慶库庫应應庙廟开開异異张張强強"
    "当當录錄征徵态態总總恒恆户戶扑撲执執扩擴扫掃护護报報换換据據摄攝数數断斷无無时時"
    "显顯晓曉暂暫术術机機条條来來杨楊杰傑极極枣棗柠檸标標栈棧树樹样樣档檔桥橋桦樺检檢"
    "楼樓榄欖樱櫻欢歡气氣汇彙汉漢汤湯沟溝浆漿测測涛濤涨漲温溫游遊滚滾满滿漓灕潜潛灯燈"
    "点點烟煙烧燒热熱牵牽状狀独獨狮獅猎獵猕獼猪豬猫貓猬蝟玛瑪环環现現电電画畫疗療监監"
    "盖蓋盘盤码碼砚硯确確礼禮积積税稅稳穩笋筍笔筆笼籠筝箏签簽紧緊红紅约約级級纪紀纫紉"
    "纳納纸紙线線组組织織经經结結给給统統绣繡绩績续續绳繩维維绿綠缆纜编編缝縫网網罗羅"
    "职職联聯肠腸脑腦脚腳腊臘艳豔节節芦蘆苏蘇苹蘋范範荟薈药藥莲蓮获獲萝蘿萤螢营營萨薩"
    "蓝藍虑慮虫蟲虾蝦蚁蟻蚂螞补補装裝见見规規视視计計认認讨討训訓议議讯訊记記许許论論"
    "设設访訪证證评評诉訴试試话話询詢该該说說请請谁誰调調谈談谢謝贝貝负負财財责責账賬"
    "货貨购購贸貿费費资資赵趙踪蹤车車转轉轮輪软軟较較边邊达達过過运運还還这這进進远遠"
    "违違适適选選邓鄧邮郵郑鄭酱醬采採里裡针針钟鐘钢鋼钻鑽铜銅银銀链鏈销銷锅鍋镇鎮镕鎔"
    "镜鏡长長门門问問间間阁閣阅閱队隊阳陽阵陣陈陳险險随隨静靜韩韓顶頂项項顺順须須预預"
    "颈頸频頻题題额額风風飞飛饨飩饺餃饼餅馄餛馈饋馍饃馒饅马馬驼駝骆駱验驗鱼魚鲁魯鲸鯨"
    "鸟鳥鸥鷗鸭鴨鹃鵑鹅鵝鹉鵡鹊鵲鹤鶴鹦鸚鹭鷺鹰鷹麦麥黄黃齐齊龄齡龙龍龟龜"
)
_S2T = str.maketrans(dict(zip(_S2T_PAIRS[0::2], _S2T_PAIRS[1::2], strict=True)))


# Context-dependent characters (系 -> 係/繫, ...) handled per phrase before the map.
_S2T_PHRASES = (("关系", "關係"), ("联系", "聯繫"), ("账号", "帳號"), ("答复", "答覆"))


def to_traditional(text: str) -> str:
    """Simplified->Traditional conversion for this generator's vocabulary (not general)."""
    for simp, trad in _S2T_PHRASES:
        if simp in text:
            text = text.replace(simp, trad)
    return text.translate(_S2T)


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

_MONTHS = _words("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec")
_WDAYS = _words("Mon Tue Wed Thu Fri Sat Sun")
_EN_WDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
_BASE_DATE = _dt.datetime(2023, 1, 2, 8, 0, 0, tzinfo=_dt.UTC)
_SLOT_RE = re.compile(r"\{(\w+)\}")
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_TABLE = [chr(b) if b in _Q_SAFE else ("_" if b == 0x20 else f"={b:02X}") for b in range(256)]
_MAX_EW = 66  # keep "Subject: " + one encoded word under 76 columns


@dataclass(frozen=True, slots=True)
class _Person:
    name: str  # display name ("" when only the bare address is used)
    addr: str
    zh: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    index: int
    lang: str
    trad: bool
    charset: str
    declared: str | None
    mislabel: str | None
    header_charset: str
    sender: _Person
    rare_name: str | None
    date: _dt.datetime
    subject: str
    subject_kws: tuple[str, ...]
    subject_kw_sentences: tuple[str, ...]
    keywords: tuple[str, ...]  # own keywords (body), subject_kws not included
    message_id: str
    refs: tuple[str, ...]
    parent: int | None
    depth: int


def _slot(name: str, r: random.Random) -> str:
    if name == "date":
        return f"{r.randint(1, 12)}月{r.randint(1, 28)}日"
    if name == "edate":
        return f"{_MONTHS[r.randrange(12)]} {r.randint(1, 28)}"
    if name == "dept":
        return r.choice(_DEPTS)
    if name == "proj":
        return r.choice(_PROJECTS)
    if name == "eproj":
        return r.choice(_EN_PROJECTS)
    if name == "pct":
        return str(r.randint(5, 95))
    if name == "client":
        return r.choice(_CLIENTS)
    if name == "eclient":
        return r.choice(_EN_CLIENTS)
    if name == "product":
        return r.choice(_PRODUCTS)
    if name == "eproduct":
        return r.choice(_EN_PRODUCTS)
    if name in ("n", "m"):
        return str(r.randint(2, 480 if name == "n" else 60))
    if name in ("h", "y"):
        return str(r.randint(2, 9))
    if name == "amount":
        return f"{r.randint(3, 9999) * 100:,}"
    if name in ("person", "person2"):
        s, _ = r.choice(_SURNAMES)
        g, _ = r.choice(_GIVEN)
        return s + g
    if name in ("ename", "ename2"):
        return r.choice(_EN_NAMES).split()[0]
    if name == "phone":
        return f"0{r.randint(10, 29)}-{r.randint(6000, 8999)} {r.randint(1000, 9999)}"
    if name == "city":
        return r.choice(_CITIES)
    if name == "doc":
        return r.choice(_DOCS)
    if name == "weekday":
        return _CN_WEEKDAYS[r.randrange(5)]
    if name == "eweekday":
        return r.choice(_EN_WDAYS)
    if name == "team":
        return r.choice(_EN_TEAMS)
    if name == "q":
        return str(r.randint(1, 4))
    if name == "hh":
        return str(r.randint(2, 5))
    if name == "ver":
        return f"{r.randint(1, 5)}.{r.randint(0, 20)}.{r.randint(0, 9)}"
    if name == "week":
        return str(r.randint(1, 52))
    if name == "notice":
        return r.choice(_ZH_NOTICES)
    raise KeyError(name)


def _fill(template: str, r: random.Random) -> str:
    return _SLOT_RE.sub(lambda m: _slot(m.group(1), r), template)


_BREAK_RE = re.compile(r".+?(?:[，。；！？：、]+|[,.;!?:](?=\s)|\s+|$)", re.S)


def _width(s: str) -> int:
    return len(s.encode("utf-8", "replace"))  # ~3 per CJK char, 1 per ASCII char


def _wrap(text: str, width: int = 96) -> list[str]:
    """Greedy wrap that only breaks after punctuation or at whitespace.

    Keywords and ASCII tokens are therefore never split across lines.
    """
    lines: list[str] = []
    cur = ""
    cw = 0
    for piece in _BREAK_RE.findall(text):
        pw = _width(piece)
        if cur and cw + pw > width:
            lines.append(cur.rstrip())
            cur, cw = piece.lstrip(), _width(piece.lstrip())
        else:
            cur += piece
            cw += pw
    if cur.strip():
        lines.append(cur.rstrip())
    return lines


def _b64_ew(data: bytes, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(data).decode('ascii')}?="


def _q_ew(data: bytes, charset: str) -> str:
    return f"=?{charset}?Q?{''.join(_Q_TABLE[b] for b in data)}?="


def _encoded_words(text: str, charset: str, mode: str, max_chars: int = 0) -> list[str]:
    """Split ``text`` on character boundaries into RFC 2047 words of <= _MAX_EW chars."""
    enc = _b64_ew if mode == "B" else _q_ew
    overhead = len(charset) + 7  # "=?" charset "?B?" ... "?="
    words: list[str] = []
    chunk: list[bytes] = []
    nbytes = qlen = 0
    for ch in text:
        b = ch.encode(charset)
        cb = len(b) if mode == "B" else sum(len(_Q_TABLE[x]) for x in b)
        new_len = overhead + (4 * ((nbytes + cb + 2) // 3) if mode == "B" else qlen + cb)
        if chunk and (new_len > _MAX_EW or (max_chars and len(chunk) >= max_chars)):
            words.append(enc(b"".join(chunk), charset))
            chunk, nbytes, qlen = [], 0, 0
        chunk.append(b)
        nbytes += len(b)
        qlen += cb
    if chunk:
        words.append(enc(b"".join(chunk), charset))
    return words


def _encodable(text: str, charset: str) -> bool:
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        return False
    return True


def _header_word(text: str, charset: str, r: random.Random) -> str:
    """Encode a short phrase (display name) as a single RFC 2047 word."""
    if not _encodable(text, charset):
        charset = "utf-8"
    label = charset.upper() if r.random() < 0.3 else charset
    data = text.encode(charset)
    return _b64_ew(data, label) if r.random() < 0.75 else _q_ew(data, label)


def _format_address(p: _Person, charset: str, r: random.Random) -> str:
    if not p.name:
        return p.addr
    if p.zh:
        return f"{_header_word(p.name, charset, r)} <{p.addr}>"
    return f"{p.name} <{p.addr}>" if r.random() < 0.8 else f'"{p.name}" <{p.addr}>'


def _format_date(d: _dt.datetime, r: random.Random) -> str:
    off = d.utcoffset() or _dt.timedelta(0)
    minutes = int(off.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hh, mm = divmod(abs(minutes), 60)
    day = f"{d.day:02d}" if r.random() < 0.8 else str(d.day)
    s = (
        f"{_WDAYS[d.weekday()]}, {day} {_MONTHS[d.month - 1]} {d.year} "
        f"{d.hour:02d}:{d.minute:02d}:{d.second:02d} {sign}{hh:02d}{mm:02d}"
    )
    if minutes == 480 and r.random() < 0.15:
        s += " (CST)"
    return s


def _asctime(d: _dt.datetime) -> str:
    return (
        f"{_WDAYS[d.weekday()]} {_MONTHS[d.month - 1]} {d.day:2d} "
        f"{d.hour:02d}:{d.minute:02d}:{d.second:02d} {d.year}"
    )


# ---------------------------------------------------------------------------
# Keyword schedule: every keyword is used at most once per pool-length window of
# indexes and per slot, so a keyword occurs in about n*slots/len(pool) messages.
# ---------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _perm(seed: int, pool: str, slot: int, epoch: int) -> tuple[int, ...]:
    size = len(BIG5_KEYWORDS if pool == "big5" else ZH_KEYWORDS)
    order = list(range(size))
    random.Random(f"mailgen/{seed}/perm/{pool}/{slot}/{epoch}").shuffle(order)
    return tuple(order)


def _pool_keyword(seed: int, pool: str, index: int, slot: int) -> str:
    words = BIG5_KEYWORDS if pool == "big5" else ZH_KEYWORDS
    size = len(words)
    # shift the window per slot so that slot k of message i and slot 0 of
    # message i differ with high probability
    key = index + slot * (size // 3)
    return words[_perm(seed, pool, slot, key // size)[key % size]]


def _make_person(
    r: random.Random, zh: bool, trad: bool, rare: list[tuple[str, str]] | None = None
) -> _Person:
    domain = r.choice(_DOMAINS)
    if not zh:
        full = r.choice(_EN_NAMES)
        first, last = full.lower().split()
        addr = f"{first}.{last}@{domain}" if r.random() < 0.6 else f"{first[0]}{last}@{domain}"
        return _Person(full if r.random() < 0.93 else "", addr, False)
    s, spy = r.choice(_SURNAMES)
    g, gpy = r.choice(rare or _GIVEN)
    name = s + g
    if trad:
        name = to_traditional(name)
    style = r.random()
    if style < 0.5:
        local = f"{gpy}.{spy}"
    elif style < 0.8:
        local = f"{spy}{gpy}"
    else:
        local = f"{spy}{gpy}{r.randint(1, 99)}"
    return _Person(name if r.random() < 0.95 else "", f"{local}@{domain}", True)


def _strip_prefix(subject: str) -> str:
    for p in ("Re: ", "RE: ", "回复：", "回覆：", "答复: ", "Fw: ", "转发："):
        if subject.startswith(p):
            return subject[len(p) :]
    return subject


def _keyword_sentence(kw: str, lang: str, trad: bool, r: random.Random, english: bool) -> str:
    if english:
        tpl = r.choice(EN_KEYWORD_TEMPLATES if lang == "en" else MIXED_EN_KEYWORD_TEMPLATES)
    elif lang == "mixed" and r.random() < 0.5:
        tpl = r.choice(MIXED_KEYWORD_TEMPLATES)
    else:
        tpl = r.choice(ZH_KEYWORD_TEMPLATES)
    if trad:
        tpl = to_traditional(tpl)
    return tpl.replace("{kw}", kw)


@lru_cache(maxsize=16384)
def _plan(seed: int, index: int) -> _Plan:
    r = random.Random(f"mailgen/{seed}/{index}/plan")
    parent: _Plan | None = None
    if index > 0 and r.random() < 0.2:
        cand = index - 1 - int(r.random() ** 2 * min(index, 400))
        p = _plan(seed, max(cand, 0))
        if p.depth < 3:
            parent = p

    u = r.random()
    if parent is not None:
        lang, trad = parent.lang, parent.trad
    else:
        lang = "zh" if u < 0.45 else ("en" if u < 0.70 else "mixed")
        trad = False

    mislabel: str | None = None
    if lang == "en":
        charset = "utf-8"
    elif trad:
        charset = "big5"
    else:
        c = r.random()
        if lang == "zh":
            charset = ("utf-8" if c < 0.42 else "gb2312" if c < 0.62 else "gbk" if c < 0.78
                       else "gb18030" if c < 0.88 else "big5")  # fmt: skip
        else:
            charset = ("utf-8" if c < 0.58 else "gb2312" if c < 0.73 else "gbk" if c < 0.88
                       else "gb18030" if c < 0.94 else "big5")  # fmt: skip
        if charset == "big5":
            if parent is not None:
                charset = "utf-8"
            else:
                trad = True
    declared: str | None = charset
    if lang != "en" and not trad and r.random() < 0.066:
        m = r.random()
        if m < 0.4:
            mislabel, charset, declared = "gbk_as_gb2312", "gbk", "gb2312"
        elif m < 0.5:
            mislabel, charset, declared = "gb18030_as_gb2312", "gb18030", "gb2312"
        elif m < 0.75:
            mislabel, charset = "gbk_as_latin1", "gbk"
            declared = "iso-8859-1" if r.random() < 0.6 else "us-ascii"
        else:
            mislabel, charset, declared = "no_charset", r.choice(["gbk", "utf-8", "gb2312"]), None

    rare: list[tuple[str, str]] | None = None
    if mislabel == "gb18030_as_gb2312":
        rare = _RARE_GIVEN_GB18030
    elif mislabel == "gbk_as_gb2312" or (charset in ("gbk", "gb18030") and r.random() < 0.1):
        rare = _RARE_GIVEN_GBK
    zh_sender = lang == "zh" or (lang == "mixed" and (rare is not None or r.random() < 0.7))
    sender = _make_person(r, zh_sender, trad, rare)
    rare_name = sender.name if rare and sender.name else None
    if rare and not rare_name:  # the display name was dropped: keep the rare name for the body
        s, _ = r.choice(_SURNAMES)
        rare_name = s + rare[0][0]

    if mislabel is None:
        header_charset = charset
    else:
        header_charset = "gb18030" if charset == "gb18030" else r.choice(["gbk", "utf-8"])

    minutes = index * 37 + r.randint(0, 36)
    tz = r.choice(_TZ)
    date = (_BASE_DATE + _dt.timedelta(minutes=minutes, seconds=r.randint(0, 59))).astimezone(
        _dt.timezone(_dt.timedelta(minutes=tz))
    )

    # keywords
    pool = "big5" if trad else "zh"
    nkw = r.choice((1, 1, 2, 2, 2, 3))
    kws: list[str] = []
    for s in range(nkw):
        if lang == "en" or (lang == "mixed" and s > 0):
            kw = english_keyword(seed, index, s)
        else:
            kw = _pool_keyword(seed, pool, index, s)
            if kw in kws:
                kw = _pool_keyword(seed, pool, index, s + 3)
        if kw not in kws:
            kws.append(kw)

    if parent is not None:
        base = _strip_prefix(parent.subject)
        if lang == "en":
            prefix = r.choice(("Re: ", "RE: "))
        else:
            prefix = r.choice(("Re: ", "RE: ", "回覆：" if trad else "回复：", "答复: "))
        subject = prefix + base
        subject_kws = parent.subject_kws
        subject_kw_sentences = parent.subject_kw_sentences
        refs = (*parent.refs, parent.message_id)[-10:]
        depth = parent.depth + 1
    else:
        if lang == "zh":
            tpl = r.choice(_ZH_SUBJECTS)
        elif lang == "en":
            tpl = r.choice(_EN_SUBJECTS)
        else:
            tpl = r.choice(_MIXED_SUBJECTS + _ZH_SUBJECTS[:4])
        subject_kws = ()
        subject_kw_sentences = ()
        if r.random() < 0.25:
            kw = kws[0]
            if lang == "en":
                tpl = r.choice(EN_KEYWORD_SUBJECTS)
            elif lang == "mixed":
                tpl = r.choice(MIXED_KEYWORD_SUBJECTS)
            else:
                tpl = r.choice(ZH_KEYWORD_SUBJECTS)
            tpl = tpl.replace("{kw}", kw)
            subject_kws = (kw,)
            subject_kw_sentences = (_keyword_sentence(kw, lang, trad, r, english=lang == "en"),)
        subject = _fill(tpl, r)
        if trad:
            subject = to_traditional(subject)
        refs = ()
        depth = 0
    kws = [k for k in kws if k not in subject_kws][: 3 - len(subject_kws)]

    domain = sender.addr.rsplit("@", 1)[1]
    stamp = date.strftime("%Y%m%d%H%M%S")
    style = r.random()
    if style < 0.4:
        mid = f"{stamp}{index:06d}{r.getrandbits(24):06x}@{domain}"
    elif style < 0.7:
        mid = f"{r.getrandbits(64):016X}.{index}@{domain}"
    else:
        mid = f"tencent_{r.getrandbits(96):024X}{index:x}@qq.example.com"
    return _Plan(
        index=index, lang=lang, trad=trad, charset=charset, declared=declared, mislabel=mislabel,
        header_charset=header_charset, sender=sender, rare_name=rare_name, date=date,
        subject=subject, subject_kws=subject_kws, subject_kw_sentences=subject_kw_sentences,
        keywords=tuple(kws), message_id=mid, refs=refs,
        parent=parent.index if parent is not None else None, depth=depth,
    )  # fmt: skip


# ---------------------------------------------------------------------------
# Body text
# ---------------------------------------------------------------------------

_POOL_SIZE = 800
_Para = tuple[tuple[str, ...], int]  # wrapped lines, approx. size in UTF-8 bytes


@lru_cache(maxsize=32)
def _paragraph_pool(seed: int, kind: str) -> tuple[_Para, ...]:
    """Pre-generated, pre-wrapped paragraphs; bodies are assembled from these."""
    if kind.endswith("_t"):
        base = _paragraph_pool(seed, kind[:-2] + "_s")
        return tuple((tuple(to_traditional(x) for x in lines), size) for lines, size in base)
    r = random.Random(f"mailgen/{seed}/pool/{kind}")
    out: list[_Para] = []
    for _ in range(_POOL_SIZE):
        sents = []
        for _ in range(r.randint(2, 6)):
            if kind == "en":
                tpl = r.choice(_EN_SENTENCES)
            elif kind == "mixed_s" and r.random() < 0.55:
                tpl = r.choice(_MIXED_SENTENCES)
            else:
                tpl = r.choice(_ZH_SENTENCES)
            sents.append(_fill(tpl, r))
        text = (" " if kind == "en" else "").join(sents)
        lines = tuple(_wrap(text))
        out.append((lines, sum(_width(x) + 1 for x in lines)))
    return tuple(out)


@lru_cache(maxsize=32)
def _pool_avg(seed: int, kind: str) -> int:
    pool = _paragraph_pool(seed, kind)
    return max(1, sum(size for _lines, size in pool) // len(pool))


def _pool_kind(plan: _Plan) -> str:
    if plan.lang == "en":
        return "en"
    return f"{plan.lang}_{'t' if plan.trad else 's'}"


def _target_size(r: random.Random) -> int:
    u = r.random()
    if u < 0.003:
        return r.randint(150_000, 250_000)
    if u < 0.045:
        return r.randint(10_000, 50_000)
    if u < 0.10:
        return r.randint(400, 1_000)
    return r.randint(1_000, 5_000)


_Block = tuple[str, Sequence[str]]  # kind ("p", "q", "sig"), lines


def _signature(plan: _Plan, r: random.Random) -> list[str]:
    name = plan.rare_name or plan.sender.name or plan.sender.addr.split("@")[0]
    phone = f"+86 {r.randint(10, 29)} {r.randint(6000, 8999)} {r.randint(1000, 9999)}"
    if plan.lang == "en" or not plan.sender.zh:
        lines = [name, f"{r.choice(['Manager', 'Director', 'Engineer', 'Analyst'])}, "
                 f"{r.choice(_EN_TEAMS)}", f"Tel: {phone}"]  # fmt: skip
    else:
        lines = [name, f"{r.choice(_DEPTS)} | {r.choice(_TITLES)}", r.choice(_COMPANIES),
                 f"电话：{phone}  邮箱：{plan.sender.addr}"]  # fmt: skip
        if plan.trad:
            lines = [to_traditional(x) for x in lines]
    return ["-- ", *lines]


def _compose(seed: int, plan: _Plan, rcpt: _Person, r: random.Random) -> list[_Block]:
    pool = _paragraph_pool(seed, _pool_kind(plan))
    en = plan.lang == "en"
    target = _target_size(r)
    rname = rcpt.name or ("team" if en else "各位")
    if not en and rcpt.zh and rcpt.name and r.random() < 0.5:
        rname = rcpt.name[0] + r.choice(["总", "经理", "老师", "工"])
    greeting = r.choice(_EN_GREETINGS if en else _ZH_GREETINGS).format(name=rname)
    if plan.trad:
        greeting = to_traditional(greeting)

    paras: list[Sequence[str]] = []
    size = 0
    avg = _pool_avg(seed, _pool_kind(plan))
    while size < target:
        for lines, psize in r.choices(pool, k=max(1, (target - size) // avg)):
            paras.append(lines)
            size += psize + 1

    # keyword paragraphs: the keyword sentence plus a fresh filler sentence
    own_sentences: list[str] = []
    for kw in plan.keywords:
        english = en or (plan.lang == "mixed" and kw.isascii())
        own_sentences.append(_keyword_sentence(kw, plan.lang, plan.trad, r, english))
    if plan.parent is None:
        own_sentences.extend(plan.subject_kw_sentences)
    for sent in own_sentences:
        filler = _fill(r.choice(_EN_SENTENCES if en else _ZH_SENTENCES), r)
        if plan.trad:
            filler = to_traditional(filler)
        text = f"{sent} {filler}" if en else (sent + filler if r.random() < 0.5 else filler + sent)
        paras.insert(r.randint(0, len(paras)), _wrap(text))

    blocks: list[_Block] = [("p", [greeting])]
    blocks.extend(("p", p) for p in paras)
    closing = r.choice(_EN_CLOSINGS if en else _ZH_CLOSINGS)
    blocks.append(("p", (to_traditional(closing) if plan.trad else closing).split("\n")))
    if plan.rare_name or r.random() < 0.6:
        blocks.append(("sig", _signature(plan, r)))

    if plan.parent is not None:
        parent = _plan(seed, plan.parent)
        d = parent.date
        pname = parent.sender.name
        if not pname or not _encodable(pname, plan.charset) or plan.trad != parent.trad:
            pname = parent.sender.addr
        who = f"{pname} <{parent.sender.addr}>"
        if en:
            hour12 = (d.hour % 12) or 12
            ampm = "PM" if d.hour >= 12 else "AM"
            head = (
                f"On {_WDAYS[d.weekday()]}, {_MONTHS[d.month - 1]} {d.day}, {d.year} at "
                f"{hour12}:{d.minute:02d} {ampm} {who} wrote:"
            )
        else:
            head = f"在 {d.year}年{d.month}月{d.day}日 {d.hour:02d}:{d.minute:02d}，{who} 写道："
            if plan.trad:
                head = to_traditional(head)
        quoted: list[str] = []
        for sent in parent.subject_kw_sentences:
            quoted.extend(_wrap(sent))
            quoted.append("")
        for lines, _size in r.choices(pool, k=r.randint(1, 3)):
            quoted.extend(lines)
            quoted.append("")
        blocks.append(("q", [head, *quoted[:-1]]))
    return blocks


def _render_plain(blocks: list[_Block]) -> str:
    out: list[str] = []
    for kind, lines in blocks:
        if kind == "q":
            out.append(lines[0])
            out.extend(f"> {x}" if x else ">" for x in lines[1:])
        else:
            out.extend(lines)
        out.append("")
    return "\n".join(out)


def _render_html_text(blocks: list[_Block]) -> str:
    """What an HTML-to-text conversion of ``_render_html`` gives (modulo whitespace)."""
    out: list[str] = []
    for _kind, lines in blocks:
        out.extend(x for x in lines if x)
        out.append("")
    return "\n".join(out)


def _render_html(blocks: list[_Block], declared: str | None) -> str:
    meta = (
        f'<meta http-equiv="Content-Type" content="text/html; charset={declared}">\n'
        if declared
        else ""
    )
    out = [f"<html><head>\n{meta}</head>\n<body>"]
    for kind, lines in blocks:
        esc = [html.escape(x, quote=False) for x in lines if x]
        if kind == "q":
            out.append(f"<div>{esc[0]}</div>")
            out.append('<blockquote style="margin:0 0 0 .8ex;border-left:1px solid #ccc;'
                       'padding-left:1ex">')  # fmt: skip
            out.extend(f"{x}<br>" for x in esc[1:])
            out.append("</blockquote>")
        elif kind == "sig":
            out.append('<div style="color:#888">')
            out.extend(f"{x}<br>" for x in esc)
            out.append("</div>")
        else:
            out.append("<p>")
            out.extend(f"{x}<br>" for x in esc)
            out.append("</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# MIME
# ---------------------------------------------------------------------------


def _b64_lines(data: bytes) -> bytes:
    enc = binascii.b2a_base64(data, newline=False)
    return b"".join([enc[i : i + 76] + b"\r\n" for i in range(0, len(enc), 76)])


def _encode_body(text: str, charset: str, cte: str) -> bytes:
    data = text.replace("\n", "\r\n").encode(charset)
    if cte == "base64":
        return _b64_lines(data)
    if cte == "quoted-printable":
        out = binascii.b2a_qp(data, istext=True)
        return out if out.endswith(b"\r\n") else out + b"=\r\n"
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _part(headers: list[str], body: bytes) -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n").encode("ascii") + body


def _multipart(subtype: str, boundary: str, parts: list[bytes]) -> tuple[str, bytes]:
    chunks = [b"This is a multi-part message in MIME format.\r\n"]
    delim = f"\r\n--{boundary}\r\n".encode("ascii")
    for i, p in enumerate(parts):
        chunks.append(delim[2:] if i == 0 else delim)
        chunks.append(p)
    chunks.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    return f'multipart/{subtype};\r\n\tboundary="{boundary}"', b"".join(chunks)


def _charset_label(cs: str, r: random.Random) -> str:
    label = cs.upper() if r.random() < 0.35 else cs
    return f'"{label}"' if r.random() < 0.3 else label


def _text_headers(subtype: str, declared: str | None, cte: str, r: random.Random) -> list[str]:
    ct = f"Content-Type: text/{subtype}"
    if declared:
        ct += f"; charset={_charset_label(declared, r)}"
    return [ct, f"Content-Transfer-Encoding: {cte}"]


def _rfc2231(param: str, name: str) -> str:
    enc = quote(name.encode("utf-8"), safe="")
    if len(enc) <= 60:
        return f"{param}*=UTF-8''{enc}"
    chunks: list[str] = []
    rest = enc
    while rest:
        cut = min(60, len(rest))
        while "%" in rest[max(cut - 2, 0) : cut] and cut < len(rest):
            cut -= 1  # never split a %XX escape
        chunks.append(rest[:cut])
        rest = rest[cut:]
    parts = [f"{param}*0*=UTF-8''{chunks[0]}"]
    parts.extend(f"{param}*{i}*={c}" for i, c in enumerate(chunks[1:], 1))
    return ";\r\n\t".join(parts)


def _attachment(r: random.Random, seed: int) -> tuple[str, str, bytes, bytes]:
    name, ctype = r.choice(_ATTACHMENTS)
    size = r.randint(200, 12_000) if r.random() < 0.9 else r.randint(12_000, 60_000)
    ext = name.rsplit(".", 1)[1]
    if ext in ("txt", "csv"):
        pool = _paragraph_pool(seed, "zh_s")
        lines: list[str] = []
        total = 0
        while total < size:
            para = pool[r.randrange(len(pool))]
            lines.extend(para[0])
            total += para[1]
        if ext == "csv":
            lines = [f"{i},{x.replace(',', ' ')}" for i, x in enumerate(lines, 1)]
        data = ("\r\n".join(lines) + "\r\n").encode("utf-8" if r.random() < 0.6 else "gb18030")
    elif ext == "pdf":
        data = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
        data += r.randbytes(size) + b"\n%%EOF\n"
    elif ext == "png":
        data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + r.randbytes(size)
    elif ext == "doc":
        data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + r.randbytes(size)
    else:
        data = b"PK\x03\x04\x14\x00\x06\x00" + r.randbytes(size)
    if name.isascii():
        ct_param, cd_param = f'name="{name}"', f'filename="{name}"'
    elif r.random() < 0.5:
        ct_param, cd_param = _rfc2231("name", name), _rfc2231("filename", name)
    else:
        cs = "UTF-8" if r.random() < 0.75 else "GBK"
        ew = _b64_ew(name.encode(cs), cs)
        ct_param, cd_param = f'name="{ew}"', f'filename="{ew}"'
    headers = [
        f"Content-Type: {ctype};\r\n\t{ct_param}",
        "Content-Transfer-Encoding: base64",
        f"Content-Disposition: attachment;\r\n\t{cd_param}",
    ]
    body = _b64_lines(data)
    return name, ctype, data, _part(headers, body)


def _subject_header(subject: str, charset: str, r: random.Random) -> str:
    if subject.isascii():
        return subject
    prefix, rest = "", subject
    for p in ("Re: ", "RE: "):
        if subject.startswith(p) and r.random() < 0.6:
            prefix, rest = p, subject[len(p) :]
    if not _encodable(rest, charset):
        charset = "utf-8"
    label = charset.upper() if r.random() < 0.4 else charset
    mode = "B" if r.random() < 0.7 else "Q"
    # sometimes split into 2-3 encoded-words on folded lines (as many MUAs do)
    max_chars = (
        0 if r.random() < 0.55 else r.randint(max(3, len(rest) // 3), max(4, len(rest) // 2))
    )
    words = [
        w.replace(f"=?{charset}?", f"=?{label}?", 1)
        for w in _encoded_words(rest, charset, mode, max_chars)
    ]
    return prefix + "\r\n ".join(words)


def _address_list(people: list[_Person], charset: str, r: random.Random) -> str:
    return ",\r\n ".join(_format_address(p, charset, r) for p in people)


def _build(seed: int, index: int, attachment_ratio: float) -> GeneratedMessage:
    plan = _plan(seed, index)
    r = random.Random(f"mailgen/{seed}/{index}/body")
    zh_people = plan.lang != "en"
    n_to, n_cc = r.choice((1, 1, 1, 2, 3)), r.choice((0, 0, 0, 1, 2, 3))
    to = [_make_person(r, zh_people and r.random() < 0.85, plan.trad) for _ in range(n_to)]
    cc = [_make_person(r, zh_people and r.random() < 0.85, plan.trad) for _ in range(n_cc)]

    blocks = _compose(seed, plan, to[0], r)
    if plan.mislabel:
        kind = "plain"
    else:
        u = r.random()
        kind = "plain" if u < 0.70 else ("alternative" if u < 0.90 else "html")
    c = r.random()
    if plan.lang == "en":
        cte = "quoted-printable" if c < 0.5 else ("8bit" if c < 0.8 else "base64")
    else:
        cte = "base64" if c < 0.55 else ("quoted-printable" if c < 0.8 else "8bit")

    charset, declared = plan.charset, plan.declared
    plain = _render_plain(blocks)
    if kind == "plain":
        body_text = plain
        content = (_text_headers("plain", declared, cte, r), _encode_body(plain, charset, cte))
    else:
        html_src = _render_html(blocks, declared)
        html_part = (_text_headers("html", declared, cte, r), _encode_body(html_src, charset, cte))
        if kind == "html":
            body_text = _render_html_text(blocks)
            content = html_part
        else:
            body_text = plain
            text_hdrs = _text_headers("plain", declared, cte, r)
            text_part = _part(text_hdrs, _encode_body(plain, charset, cte))
            ct, body = _multipart(
                "alternative", f"----=_NextPart_{index:06d}_ALT_{r.getrandbits(32):08X}",
                [text_part, _part(*html_part)],
            )  # fmt: skip
            content = ([f"Content-Type: {ct}"], body)

    names: list[str] = []
    atts: list[tuple[str, str, bytes]] = []
    ra = random.Random(f"mailgen/{seed}/{index}/att")
    if ra.random() < attachment_ratio:
        parts = [_part(*content)]
        for _ in range(ra.choice((1, 1, 1, 2, 3))):
            name, ctype, data, part = _attachment(ra, seed)
            names.append(name)
            atts.append((name, ctype, data))
            parts.append(part)
        ct, body = _multipart("mixed", f"----=_Part_{index}_{ra.getrandbits(40):010x}", parts)
        content = ([f"Content-Type: {ct}"], body)

    hcs = plan.header_charset
    headers: list[str] = []
    if r.random() < 0.35:
        relay = r.choice(["mx1.corp.example", "mail.example.cn", "smtp.example.com"])
        headers.append(
            f"Received: from {relay} ({relay} [192.0.2.{r.randint(1, 254)}])\r\n"
            f"\tby mx.example.com with ESMTPS id {r.getrandbits(48):012x};\r\n"
            f"\t{_format_date(plan.date, r)}"
        )
    date_hdr = None if r.random() < 0.02 else _format_date(plan.date, r)
    if date_hdr is not None:
        headers.append(f"Date: {date_hdr}")
    headers.append(f"From: {_format_address(plan.sender, hcs, r)}")
    headers.append(f"To: {_address_list(to, hcs, r)}")
    if cc:
        headers.append(f"Cc: {_address_list(cc, hcs, r)}")
    headers.append(f"Subject: {_subject_header(plan.subject, hcs, r)}")
    headers.append(f"Message-ID: <{plan.message_id}>")
    in_reply_to = plan.refs[-1] if plan.refs else None
    if in_reply_to:
        headers.append(f"In-Reply-To: <{in_reply_to}>")
        headers.append("References: " + "\r\n ".join(f"<{x}>" for x in plan.refs))
    headers.append("MIME-Version: 1.0")
    if r.random() < 0.5:
        headers.append(f"X-Mailer: {r.choice(_MAILERS)}")
    raw = ("\r\n".join(headers) + "\r\n").encode("ascii") + _part(*content)

    keywords = [*plan.keywords, *plan.subject_kws]
    return GeneratedMessage(
        raw=raw, index=index, message_id=plan.message_id, subject=plan.subject,
        body_text=body_text, charset=charset, declared_charset=declared, transfer_encoding=cte,
        attachment_names=names, keywords=keywords, language=plan.lang, content_kind=kind,
        mislabel=plan.mislabel, in_reply_to=in_reply_to, date=date_hdr,
        from_addr=plan.sender.addr, attachments=atts,
    )  # fmt: skip


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def generate(
    n: int, seed: int = 42, *, attachment_ratio: float = 0.15, start: int = 0
) -> Iterator[GeneratedMessage]:
    """Yield messages ``start .. start + n - 1`` for ``seed`` (independent of ``start``)."""
    for i in range(start, start + n):
        yield _build(seed, i, attachment_ratio)


_FROM_LINE_RE = re.compile(rb"^(>*From )", re.M)


def _mbox_from_line(msg: GeneratedMessage) -> bytes:
    d = _BASE_DATE + _dt.timedelta(minutes=msg.index * 37)
    return f"From {msg.from_addr or 'MAILER-DAEMON'} {_asctime(d)}\n".encode("ascii")


def write_mbox(path: str | Path, messages: Iterable[GeneratedMessage]) -> int:
    """Write an mboxrd file (">From " quoting); returns the number of messages.

    Each message keeps its CRLF line endings; messages are separated by a blank
    ``\\n`` line followed by the ``From `` separator, as ``mailbox.mbox`` expects.
    """
    count = 0
    with open(path, "wb") as fh:
        for msg in messages:
            fh.write(_mbox_from_line(msg))
            fh.write(_FROM_LINE_RE.sub(rb">\1", msg.raw))
            fh.write(b"\n")
            count += 1
    return count


def write_eml_dir(path: str | Path, messages: Iterable[GeneratedMessage]) -> int:
    """Write one ``NNNNNNN.eml`` file per message into ``path``; returns the count."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for msg in messages:
        (out / f"{msg.index:07d}.eml").write_bytes(msg.raw)
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.mailgen", description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--attachment-ratio", type=float, default=0.15)
    ap.add_argument("--out", required=True)
    ap.add_argument("--format", choices=("mbox", "eml"), default="mbox")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    msgs = generate(args.count, args.seed, attachment_ratio=args.attachment_ratio, start=args.start)
    writer = write_mbox if args.format == "mbox" else write_eml_dir
    count = writer(args.out, msgs)
    dt = time.perf_counter() - t0
    rate = count / dt if dt > 0 else float("inf")
    print(f"wrote {count} messages to {args.out} in {dt:.2f}s ({rate:,.0f} msg/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
