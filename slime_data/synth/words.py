"""Word banks for labels, names and filler text. Every entry is ASCII (the drawing font is Latin-1)."""

from __future__ import annotations

CITIES = (
    "Aberdeen", "Ankara", "Antwerp", "Athens", "Auckland", "Austin", "Bergen", "Bilbao", "Bologna",
    "Bordeaux", "Boston", "Bremen", "Brisbane", "Bruges", "Calgary", "Cardiff", "Chennai", "Cork",
    "Dakar", "Denver", "Dresden", "Dublin", "Durban", "Geneva", "Genoa", "Ghent", "Glasgow", "Graz",
    "Hanoi", "Helsinki", "Kyoto", "Lagos", "Leeds", "Leipzig", "Lille", "Lima", "Linz", "Lisbon",
    "Lyon", "Malmo", "Manila", "Marseille", "Melbourne", "Montreal", "Munich", "Nairobi", "Nantes",
    "Naples", "Osaka", "Oslo", "Ottawa", "Porto", "Prague", "Quito", "Riga", "Seville", "Tallinn",
    "Tampere", "Toronto", "Turin", "Utrecht", "Valencia", "Vienna", "Vilnius", "Zagreb", "Zurich",
)

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Bruno", "Carla", "Dario", "Elena", "Farid", "Greta", "Hugo", "Ines",
    "Jonas", "Keiko", "Lars", "Maya", "Nadia", "Omar", "Paula", "Rafael", "Sofia", "Tomas", "Vera",
    "Wen", "Yusuf", "Zora", "Ivan", "Lena", "Marco", "Nina", "Oscar",
)

SURNAMES = (
    "Almeida", "Baker", "Castro", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito", "Jensen",
    "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka",
    "Ueda", "Varga", "Weber", "Yilmaz", "Zimmer", "Silva", "Horvat", "Lindqvist", "Mendes", "Nakamura",
)

PRODUCTS = (
    "Anchor", "Beacon", "Cobalt", "Delta", "Ember", "Falcon", "Garnet", "Harbor", "Indigo", "Juniper",
    "Kestrel", "Lumen", "Meridian", "Nimbus", "Onyx", "Pioneer", "Quartz", "Raven", "Summit", "Tundra",
    "Umber", "Vertex", "Willow", "Xenon", "Yarrow", "Zephyr", "Atlas", "Boreal", "Cedar", "Dune",
    "Echo", "Fjord", "Glacier", "Horizon", "Iris", "Jade", "Koi", "Lotus", "Mistral", "Nova",
)

FRUITS = (
    "Apples", "Pears", "Plums", "Cherries", "Grapes", "Lemons", "Oranges", "Peaches", "Mangoes",
    "Kiwis", "Figs", "Apricots",
)

SECTION_TOPICS = (
    "Background", "Membership", "Finances", "Facilities", "Governance", "Outreach", "Staffing",
    "Programmes", "Partnerships", "Safety", "Research", "Training", "Outlook", "Procurement",
)

ORG_TYPES = ("Society", "Institute", "Association", "Foundation", "Council", "Cooperative", "Trust")
ORG_FIELDS = (
    "Rowing", "Astronomy", "Botanical", "Chess", "Coastal Research", "Folk Music", "Beekeeping",
    "Railway Heritage", "Urban Cycling", "Textile Arts", "Ceramics", "Glacier Studies",
)
DEPARTMENTS = (
    "library", "laboratory", "archive", "workshop", "visitor centre", "field station", "print shop",
)
ROLES = ("treasurer", "secretary", "chair", "research director", "head of outreach", "archivist")
FACILITIES = ("reading room", "main hall", "greenhouse", "boathouse", "observatory", "storage depot")
PROGRAMMES = ("summer school", "travel grant", "mentoring scheme", "research fellowship", "apprenticeship")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)

FILLER_NOUNS = (
    "annual plan", "draft budget", "member survey", "safety review", "building survey", "audit report",
    "newsletter", "volunteer rota", "archive catalogue", "grant application", "code of conduct",
    "travel policy", "equipment list", "training schedule", "event calendar", "website", "minutes",
)
FILLER_VERBS = ("review", "publish", "update", "circulate", "approve", "revise", "simplify", "discuss")
FILLER_PATTERNS = (
    "The committee agreed to {verb} the {noun} before the next general meeting.",
    "Members asked the board to {verb} the {noun} and to report back in writing.",
    "A working group will {verb} the {noun} together with the regional offices.",
    "Several volunteers offered to {verb} the {noun} over the coming months.",
    "The board noted that the {noun} had been well received by most members.",
    "Comments on the {noun} may be sent to the secretary at any time.",
    "It was decided to {verb} the {noun} once the new procedures are in place.",
    "The {noun} remains available on request from the main office.",
    "Progress on the {noun} will be discussed again at the autumn session.",
    "Staff were thanked for their work on the {noun} during a demanding year.",
)
