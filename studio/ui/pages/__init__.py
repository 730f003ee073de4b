"""One module per page (the Train and Gallery pages are the packages `studio.ui.train` and
`studio.ui.gallery`); each page is a QWidget built from a StudioContext, with a `refresh()`.

PAGES lists them in sidebar order: (key, title, module, class name). The key doubles as the page's
objectName prefix (`<key>Page`).
"""

PAGES: tuple[tuple[str, str, str, str], ...] = (
    ("datasets", "Datasets", "studio.ui.pages.datasets", "DatasetsPage"),
    ("train", "Train", "studio.ui.train", "TrainPage"),
    ("models", "Models", "studio.ui.pages.models", "ModelsPage"),
    ("generate", "Generate", "studio.ui.pages.generate", "GeneratePage"),
    ("gallery", "Gallery", "studio.ui.gallery", "GalleryPage"),
    ("map", "Map", "studio.ui.pages.map", "MapPage"),
    ("interpolate", "Interpolate", "studio.ui.pages.interpolate", "InterpolatePage"),
    ("inpaint", "Inpaint", "studio.ui.pages.inpaint", "InpaintPage"),
)
