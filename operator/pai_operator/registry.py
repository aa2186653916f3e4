"""The registration list: the registries this operator serves. Nothing else names a registry.

The kopf adapter runs a controller per backend of each plug-in, the CRD generator (`crd.py`,
`pai-operator crd`, `make crds`) writes a CRD per resource, the settings (flags, environment
variables, README table) include each plug-in's section, and every metric carries its
resource's `registry` label. Adding a registry: a folder like `truefoundry/` with a `plugin`
module, and its line here (in `PLUGINS`, and its section among `OperatorSettings`' bases).
"""

from __future__ import annotations

from typing import Final

from pai_operator.core_settings import CoreSettings
from pai_operator.pai.plugin import PLUGIN as PAI
from pai_operator.pai.settings import PaiSettings
from pai_operator.plugin import Plugin
from pai_operator.truefoundry.plugin import PLUGIN as TRUEFOUNDRY
from pai_operator.truefoundry.settings import TrueFoundrySettings

PLUGINS: Final[tuple[Plugin, ...]] = (PAI, TRUEFOUNDRY)


# Fields are listed core first, then the sections in reverse order of the bases (pydantic walks
# the MRO from the far end): the settings table reads core, PAI, TrueFoundry.
class OperatorSettings(TrueFoundrySettings, PaiSettings, CoreSettings):
    """Everything `pai-operator run` can be told: the core and every registry's section.
    Immutable; validated on construction."""
