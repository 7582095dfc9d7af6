"""The hundred-day campaign, household by household: the order each story is drawn in.

Each household's story is drawn from its own random generator (see `rng_for`), so stories are
independent of one another and of the order they are drawn in; within a story, the draws must
keep this order, or the same seed would give a different campaign. The seed's named households
are scripted (`named_households`); every other story is drawn at random (`decisions`,
`circumstances`, `visits`). The record shapes live in `records`.
"""

from __future__ import annotations

from services.tools.simulation import records as rec
from services.tools.simulation.aftercare import eliminate, rereview_after_switch
from services.tools.simulation.campaign_plan import CampaignPlan, Planned
from services.tools.simulation.circumstances import draw_hardships, draw_latent, registry_changes
from services.tools.simulation.county import County, Household, rng_for
from services.tools.simulation.decisions import prior_monitoring, review
from services.tools.simulation.entry import later_hardships, take_up_flags
from services.tools.simulation.named_households import NAMED_CASES, scripted_story
from services.tools.simulation.parameters import SimulationParameters
from services.tools.simulation.story import Story
from services.tools.simulation.visits import draw_visits, follow_ups, walk_visits


def plan_campaign(parameters: SimulationParameters, county: County) -> list[Planned]:
    """Every record of the campaign, unsorted: the cadre registry, then each household's story."""
    campaign = CampaignPlan(parameters, county)
    for cadre in county.cadres:
        event_id = rec.derived_id(campaign.seed, "cadre", cadre.cadre_id, 1)
        campaign.emit(
            rec.CADRE, rec.cadre_record(event_id, cadre, campaign.import_at, campaign.import_at)
        )
    for household in county.households:
        _household(campaign, household)
    return campaign.planned


def _household(campaign: CampaignPlan, household: Household) -> None:
    story = Story(household, rng_for(campaign.seed, "story", household.household_id))
    first_record = len(campaign.planned)
    r = story.rng
    campaign.emit(
        rec.REGISTRY,
        rec.registry_record(
            campaign.next_id(story), household, campaign.import_at, campaign.import_at
        ),
    )
    story.income_growth = r.gauss(1.05, 0.07)
    if household.case in NAMED_CASES:
        scripted_story(campaign, story)
    else:
        prior_monitoring(campaign, story)
        draw_latent(campaign, story)
        draw_hardships(campaign, story)
        draw_visits(campaign, story)
        review(campaign, story)
        registry_changes(campaign, story)
        later_hardships(campaign, story)
    rereview_after_switch(campaign, story, first_record)
    follow_ups(campaign, story)
    walk_visits(campaign, story)
    eliminate(campaign, story, first_record)
    take_up_flags(campaign, story, first_record)
