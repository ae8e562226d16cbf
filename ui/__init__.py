"""The app's shared UI code, by concern (the pages in ``app_pages/`` are thin scripts):

- :mod:`ui.context`: configuration, the cached dataset and review store, the keys pages share;
- :mod:`ui.sidebar`: the dataset panel and the ISLES 2022 import, drawn on every page;
- :mod:`ui.pictures`: Streamlit-free picture making and its ``st.cache_data`` wrappers;
- :mod:`ui.widgets`: slice pickers, the quality report, candidate views, messages.

Each page names its own session-state keys at its top (a short prefix per page).
"""
